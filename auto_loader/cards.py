"""Model cards for the catalog: ``huggingface_hub.ModelCard`` metadata plus text, one per entry.

``model_cards/<name>.md`` are rendered from the catalog by ``python -m auto_loader.cards``; a test
checks that the files are up to date and that every card's metadata parses.
"""

from __future__ import annotations

import sys
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from .catalog import CATALOG, MODEL_CARDS, CatalogEntry

# Where each family's parity with a reference implementation is measured, and the figure.
PARITY = {
    "bert": "logits and every hidden state equal transformers' `BertModel` / `BertForMaskedLM` on the "
    "same weights: max |difference| 0.0 in fp32 (`tests/test_parity.py`); the real all-MiniLM-L6-v2 "
    "weights give token embeddings within 1e-5 and the same sentence cosine similarities "
    "(`tests/test_real_weights.py`)",
    "roberta": "logits and every hidden state equal transformers' `RobertaForMaskedLM` on the same weights: "
    "max |difference| 0.0 in fp32 (`tests/test_parity.py`)",
    "gpt2": "logits within 1e-5 of transformers' `GPT2LMHeadModel` on the same weights (about 1e-6: "
    "`nn.Linear` instead of `Conv1D`); greedy generation identical, cached, uncached and left-padded "
    "(`tests/test_parity.py`, `tests/test_generation.py`)",
    "llama": "logits within 1e-4 of transformers' `LlamaForCausalLM`, `MistralForCausalLM` and "
    "`Qwen2ForCausalLM` on the same weights, greedy generation identical including left-padded batches "
    "(`tests/test_llama.py`); the real SmolLM2-135M-Instruct weights give logits within 1e-3 of "
    "transformers and the same next tokens (`tests/test_real_weights.py`)",
    "t5": "logits within 1e-5 of transformers' `T5ForConditionalGeneration` for the t5 and v1.1 / flan "
    "layouts; greedy and beam-search outputs identical (`tests/test_t5.py`)",
    "glm": "logits within 1e-5 of FlagAI 1.8.4's own `GLMModel` on the same weights for [MASK], [sMASK] "
    "and [gMASK] blank infilling; greedy blank filling equals a FlagAI decode (`tests/test_glm.py`)",
}

PIPELINE_TAG = {
    "bert": "fill-mask",
    "roberta": "fill-mask",
    "gpt2": "text-generation",
    "llama": "text-generation",
    "gpt": "text-generation",
    "t5": "text2text-generation",
    "glm": "text2text-generation",
}

ARCHITECTURE = {
    "bert": "post-LayerNorm Transformer encoder (BERT): learned absolute positions, token types, GELU MLP",
    "roberta": "post-LayerNorm Transformer encoder (RoBERTa): BERT's encoder with RoBERTa's position offset",
    "gpt2": "pre-LayerNorm Transformer decoder (GPT-2): learned positions, tanh-GELU MLP, tied LM head",
    "llama": "pre-RMSNorm Transformer decoder (Llama family): RoPE, grouped-query attention, SwiGLU MLP",
    "gpt": "nanoGPT-style decoder: GPT-2's architecture built from the shared zoo blocks",
    "t5": "Transformer encoder-decoder (T5): relative position bias, RMS-style LayerNorm, ReLU or gated-GELU MLP",
    "glm": "GLM: Transformer with 2-D (position, block position) embeddings and blank-infilling attention masks",
}


def tasks_for(entry: CatalogEntry) -> list[str]:
    """Task names whose head this entry supports."""
    from tasks import get_task, task_names

    heads = set(entry.supported_heads())
    names = [get_task(name).name for name in task_names() if get_task(name).head in heads]
    return list(dict.fromkeys(names))  # aliases (sequence-labeling -> ner) once


def render_card(entry: CatalogEntry) -> ModelCard:
    family = "bert" if entry.name == "roberta-base-ch" else entry.family
    pipeline_tag = "sentence-similarity" if entry.head_defaults.get("pooling") else PIPELINE_TAG[entry.family]
    data = ModelCardData(
        license=entry.license,
        language=list(entry.languages),
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        tags=["zoo-models", entry.family],
        base_model=entry.hub_id,
    )
    tasks = tasks_for(entry)
    preferred = ("embedding",) if entry.head_defaults.get("pooling") else ("title-generation", "lm", "ner")
    example_task = next((t for t in preferred if t in tasks), tasks[0])
    lines = [
        f"# {entry.name}",
        "",
        entry.description,
        "",
        f"- Weights: [`{entry.hub_id}`](https://huggingface.co/{entry.hub_id}) ({entry.parameters} parameters, "
        f"license `{entry.license}`{'; see the repository for its terms' if entry.license == 'other' else ''})",
        f"- Family: `{entry.family}` — {ARCHITECTURE[family]}",
        f"- Heads: {', '.join(f'`{h}`' for h in entry.supported_heads())}",
        f"- Tasks: {', '.join(f'`{t}`' for t in tasks)}",
        "",
        "## Load it",
        "",
        "```python",
        "from auto_loader import AutoLoader",
        "",
        f'loader = AutoLoader("{example_task}", model_name="{entry.name}", model_dir="./checkpoints")',
        "model, tokenizer = loader.get_model(), loader.get_tokenizer()",
        "predictor = loader.get_predictor()",
        "```",
        "",
        "`model_dir/<name>` is used when it exists; otherwise the weights come from the Hub (cached, "
        "`revision=` pins a commit, `HF_HUB_OFFLINE=1` uses the cache only). The same weights load in plain "
        "transformers:",
        "",
        "```python",
        "from transformers import AutoModel, AutoTokenizer",
        "",
        f'model = AutoModel.from_pretrained("{entry.hub_id}")',
        f'tokenizer = AutoTokenizer.from_pretrained("{entry.tokenizer_id}")',
        "```",
        "",
        "## Parity evidence",
        "",
        f"The zoo implementation of this family is checked against a reference it does not share code with: "
        f"{PARITY[family]}.",
        "",
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def write_cards(directory: Path = MODEL_CARDS) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in CATALOG.values():
        path = directory / f"{entry.name}.md"
        path.write_text(str(render_card(entry)), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_cards(Path(sys.argv[1]) if len(sys.argv) > 1 else MODEL_CARDS):
        print(path)
