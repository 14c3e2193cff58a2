"""Model cards for the catalog: ``huggingface_hub.ModelCard`` metadata plus text, one per entry, from
the family's declaration (architecture, parity evidence, pipeline tag).

``model_cards/<name>.md`` are rendered from the catalog by ``python -m auto_loader.cards``; a test
checks that the files are up to date and that every card's metadata parses.
"""

from __future__ import annotations

import sys
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from zoo.family import get_family

from .catalog import CATALOG, MODEL_CARDS, CatalogEntry


def tasks_for(entry: CatalogEntry) -> list[str]:
    """Task names whose head this entry supports."""
    from tasks import get_task, task_names

    heads = set(entry.supported_heads())
    names = [get_task(name).name for name in task_names() if get_task(name).head in heads]
    return list(dict.fromkeys(names))  # aliases (sequence-labeling -> ner) once


def render_card(entry: CatalogEntry) -> ModelCard:
    family = get_family(entry.family)
    pipeline_tag = "sentence-similarity" if entry.head_defaults.get("pooling") else family.pipeline_tag
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
        f"- Family: `{entry.family}` — {family.architecture}",
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
        f"{family.parity}.",
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
