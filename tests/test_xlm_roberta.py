"""XLM-RoBERTa (``zoo/models/xlm_roberta``): RoBERTa's architecture under transformers' ``xlm-roberta`` names.

* parity both ways on the same weights: a transformers ``XLMRobertaForMaskedLM`` / ``XLMRobertaModel`` /
  ``XLMRobertaForTokenClassification`` directory loads with ``zoo.load``, and the zoo classes'
  ``save_pretrained`` (transformers layout by default) loads in transformers' Auto classes; logits and
  every hidden state agree within 1e-4 in fp32 on a padded batch, sdpa and eager;
* every head kind builds and returns a loss; LoRA's defaults wrap the attention projections;
* an embedding head (CLS pooling, L2-normalised, as BAAI's bge models) saved as a sentence-transformers
  directory gives the same vectors in plain ``SentenceTransformer``, and ``AutoLoader("embedding", ...)``
  pools by CLS from that directory and from the catalog's ``bge-m3`` defaults.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from reference_models import padded_batch
from tiny_models import wordpiece_tokenizer

import zoo
from auto_loader import CATALOG, AutoLoader
from tasks.base import model_inputs
from trainers.lora import apply_lora
from zoo.family import get_family, head_class, supported_heads
from zoo.models.xlm_roberta import (
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
    XLMRobertaForSentenceEmbedding,
    XLMRobertaForTokenClassification,
    XLMRobertaModel,
)

TOL = 1e-4
VOCAB = 211  # reference_models.padded_batch draws ids below it
PAD = 1
NUM_LABELS = 3
SHAPE = dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128)
SENTENCES = ["john lives in paris .", "the cat sat on the mat", "i love this movie , it was good !"]
REFERENCE_CLASSES = {
    "masked-lm": (
        transformers.XLMRobertaForMaskedLM,
        XLMRobertaForMaskedLM,
        transformers.AutoModelForMaskedLM,
    ),
    "base": (transformers.XLMRobertaModel, XLMRobertaModel, transformers.AutoModel),
    "sequence-labeling": (
        transformers.XLMRobertaForTokenClassification,
        XLMRobertaForTokenClassification,
        transformers.AutoModelForTokenClassification,
    ),
}


def _randomize(model: torch.nn.Module, seed: int = 1, scale: float = 0.02) -> torch.nn.Module:
    """Non-trivial values everywhere (biases and norms too), so a wrong mapping cannot hide."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * scale)
    return model.eval()


def _reference(kind: str) -> transformers.PreTrainedModel:
    torch.manual_seed(0)
    config = transformers.XLMRobertaConfig(
        vocab_size=VOCAB, max_position_embeddings=130, type_vocab_size=1, layer_norm_eps=1e-5,
        num_labels=NUM_LABELS, **SHAPE,
    )  # fmt: skip
    return _randomize(REFERENCE_CLASSES[kind][0](config))


def _zoo(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=VOCAB, max_position_embeddings=130, hidden_dropout=0.0, attention_dropout=0.0,
        num_labels=NUM_LABELS, **SHAPE,
    )  # fmt: skip
    return _randomize(REFERENCE_CLASSES[kind][1](config))


def _max_diff(a, b, mask: torch.Tensor | None = None) -> float:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if mask is not None:  # padded positions are not defined by either implementation
        a, b = a[mask.bool()], b[mask.bool()]
    return (a - b).abs().max().item()


def _compare(ours, theirs, kind: str, mask: torch.Tensor) -> float:
    """The largest difference over the main output and every hidden state (non-padding positions)."""
    main = "last_hidden_state" if kind == "base" else "logits"
    assert ours[main].shape == theirs[main].shape
    differences = [_max_diff(ours[main], theirs[main], mask)]
    if kind == "base":
        differences.append(_max_diff(ours.pooler_output, theirs.pooler_output))
    assert len(ours.hidden_states) == len(theirs.hidden_states) == SHAPE["num_hidden_layers"] + 1
    differences += [_max_diff(a, e, mask) for a, e in zip(ours.hidden_states, theirs.hidden_states)]
    return max(differences)


@pytest.mark.parametrize("kind", list(REFERENCE_CLASSES))
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_parity_with_transformers_both_ways(kind, attn_implementation, tmp_path):
    reference_class, zoo_class, auto_class = REFERENCE_CLASSES[kind]
    batch = padded_batch(PAD)
    mask = batch["attention_mask"]

    # transformers -> zoo.load
    reference = _reference(kind)
    reference.save_pretrained(tmp_path / "transformers")
    model = zoo.load(tmp_path / "transformers")
    assert type(model) is zoo_class and model.config.model_type == "zoo_xlm_roberta"
    assert model.config.reference_model_type == "xlm-roberta" and model.config.positions_from_padding
    # zoo -> save_pretrained (the transformers layout) -> the transformers Auto class
    ours = _zoo(kind)
    ours.save_pretrained(tmp_path / "zoo")
    saved = json.loads((tmp_path / "zoo" / "config.json").read_text())
    assert saved["model_type"] == "xlm-roberta" and saved["architectures"] == [reference_class.__name__]
    theirs = auto_class.from_pretrained(tmp_path / "zoo", attn_implementation=attn_implementation).eval()
    assert type(theirs) is reference_class

    for zoo_model, transformers_model in ((model, reference), (ours, theirs)):
        zoo_model.set_attn_implementation(attn_implementation)
        transformers_model.set_attn_implementation(attn_implementation)
        with torch.no_grad():
            actual = zoo_model(**batch, output_hidden_states=True)
            expected = transformers_model(**batch, output_hidden_states=True)
        difference = _compare(actual, expected, kind, mask)
        assert difference <= TOL, f"{type(zoo_model).__name__} ({attn_implementation}): {difference:.2e}"


def test_loss_matches_transformers(tmp_path):
    reference = _reference("masked-lm")
    reference.save_pretrained(tmp_path)
    model = zoo.load(tmp_path)
    batch = padded_batch(PAD)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    labels[:, ::2] = -100
    with torch.no_grad():
        ours, theirs = model(**batch, labels=labels).loss, reference(**batch, labels=labels).loss
    assert abs(ours.item() - theirs.item()) <= 1e-5 and ours.item() > 1.0


def test_the_family_declaration():
    family = get_family("xlm-roberta")
    assert zoo.family_of(transformers.XLMRobertaConfig()) == "xlm-roberta"
    assert zoo.family_of("zoo_xlm_roberta") == "xlm-roberta"
    assert zoo.family_of(transformers.RobertaConfig()) == "roberta"  # RoBERTa stays RoBERTa's
    assert family.base_class is XLMRobertaModel and family.lm_heads["masked-lm"] is XLMRobertaForMaskedLM
    assert head_class("xlm-roberta", "sequence-labeling") is XLMRobertaForTokenClassification
    assert zoo.XLMRobertaForTokenClassification.reference_architectures == {
        "xlm-roberta": "XLMRobertaForTokenClassification"
    }
    # transformers' XLM-R sequence classifier (dense + out_proj) is another layout: zoo layout only
    assert zoo.XLMRobertaForSequenceClassification.reference_architectures == {}
    assert XLMRobertaConfig().vocab_size == 250002  # xlm-roberta-base's vocabulary


def _tiny_config(**overrides) -> XLMRobertaConfig:
    return XLMRobertaConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=66, hidden_dropout=0.0, attention_dropout=0.0, **overrides,
    )  # fmt: skip


def _head_batch(kind: str) -> dict:
    batch = padded_batch(PAD)
    mask = batch["attention_mask"]
    generator = torch.Generator().manual_seed(3)
    if kind == "sequence-classification":
        return {**batch, "labels": torch.arange(3) % NUM_LABELS}
    if kind in ("sequence-labeling", "sequence-labeling-crf"):
        tags = torch.randint(NUM_LABELS, mask.shape, generator=generator)
        return {**batch, "labels": tags.masked_fill(mask == 0, -100)}
    if kind == "embedding":
        pair = padded_batch(PAD, seed=1)
        return {**batch, "pair_input_ids": pair["input_ids"], "pair_attention_mask": pair["attention_mask"],
                "labels": torch.rand(3, generator=generator)}  # fmt: skip
    labels = batch["input_ids"].masked_fill(mask == 0, -100)
    if kind == "seq2seq":  # UniLM: the first half of each row is the source
        segments = (torch.arange(12) >= 6).long().expand(3, -1)
        return {**batch, "token_type_ids": segments, "labels": labels.masked_fill(segments == 0, -100)}
    return {**batch, "labels": labels}


def test_every_head_kind_builds_and_returns_a_loss():
    kinds = supported_heads("xlm-roberta")
    assert set(kinds) == {
        "masked-lm", "seq2seq", "sequence-labeling", "sequence-labeling-crf", "sequence-classification", "embedding",
    }  # fmt: skip
    for kind in kinds:
        cls = head_class("xlm-roberta", kind)
        assert cls.__name__.startswith("XLMRobertaFor") and cls.config_class is XLMRobertaConfig
        torch.manual_seed(0)
        model = cls(_tiny_config(num_labels=NUM_LABELS))
        output = model(**_head_batch(kind), output_hidden_states=True)
        assert output.loss is not None and torch.isfinite(output.loss), kind
        assert output.hidden_states and len(output.hidden_states) == 3, kind


def test_lora_defaults_wrap_the_attention_projections():
    model = XLMRobertaForMaskedLM(_tiny_config())
    wrapped = apply_lora(model)
    names = {
        name.removeprefix("base_model.model.")
        for name, module in wrapped.named_modules()
        if type(module).__module__.startswith("peft.tuners.lora") and hasattr(module, "lora_A")
    }
    assert names == {f"model.layers.{i}.attn.{p}" for i in range(2) for p in ("qkv", "out")}
    batch = _head_batch("masked-lm")
    wrapped(**batch).loss.backward()
    assert all(p.grad is not None for n, p in wrapped.named_parameters() if "lora_B" in n)
    assert not any(p.requires_grad for n, p in wrapped.named_parameters() if "embed_tokens" in n)


# -- sentence embeddings: bge-like CLS pooling --------------------------------------------------------
def _bge_like_head():
    """A tiny XLM-R embedding head pooling and normalising as bge-m3 does (CLS, L2)."""
    tokenizer = wordpiece_tokenizer()
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
        pooling="cls", normalize_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    return _randomize(XLMRobertaForSentenceEmbedding(config), scale=0.1), tokenizer


def _vectors(model, tokenizer) -> torch.Tensor:
    batch = model_inputs(tokenizer(SENTENCES, padding=True, return_tensors="pt"), model)
    with torch.no_grad():
        return model(**batch).pooler_output


def _cls_vectors(model, tokenizer) -> torch.Tensor:
    """What CLS pooling + L2 normalisation gives, computed from the backbone's states by hand."""
    batch = model_inputs(tokenizer(SENTENCES, padding=True, return_tensors="pt"), model)
    with torch.no_grad():
        states = model.model(**batch).last_hidden_state
    return torch.nn.functional.normalize(states[:, 0], dim=-1)


def test_sentence_transformers_directory_and_autoloader_pool_by_cls(tmp_path):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    model, tokenizer = _bge_like_head()
    expected = _vectors(model, tokenizer)
    assert _max_diff(expected, _cls_vectors(model, tokenizer)) <= 1e-6
    assert torch.allclose(expected.norm(dim=-1), torch.ones(3), atol=1e-6)

    directory = tmp_path / "bge-like"
    # a sentence-transformers directory, as the backbone has a transformers class
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    config = json.loads((directory / "config.json").read_text())
    assert config["model_type"] == "xlm-roberta" and config["architectures"] == ["XLMRobertaModel"]
    pooling = json.loads((directory / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_cls_token"] and not pooling["pooling_mode_mean_tokens"]

    encoder = sentence_transformers.SentenceTransformer(str(directory), device="cpu")
    assert [type(module).__name__ for module in encoder] == ["Transformer", "Pooling", "Normalize"]
    assert type(encoder[0].auto_model) is transformers.XLMRobertaModel
    encoded = encoder.encode(SENTENCES, convert_to_tensor=True)
    assert _max_diff(encoded, expected) <= 1e-5

    # AutoLoader on the local directory: the pooling its modules.json names
    loader = AutoLoader("embedding", model_name=str(directory))
    assert type(loader.model) is XLMRobertaForSentenceEmbedding and loader.family == "xlm-roberta"
    assert (loader.model.config.pooling, loader.model.config.normalize_embeddings) == ("cls", True)
    assert _max_diff(_vectors(loader.model, loader.get_tokenizer()), expected) <= 1e-6

    # AutoLoader by catalog name on a plain encoder checkpoint (no modules.json): the entry's defaults
    plain = tmp_path / "checkpoints" / "bge-m3"
    model.model.save_pretrained(plain)
    tokenizer.save_pretrained(plain)
    assert not (plain / "modules.json").exists()
    loader = AutoLoader("embedding", model_name="bge-m3", model_dir=tmp_path / "checkpoints")
    assert loader.entry is CATALOG["bge-m3"]
    assert (loader.model.config.pooling, loader.model.config.normalize_embeddings) == ("cls", True)
    assert _max_diff(_vectors(loader.model, loader.get_tokenizer()), expected) <= 1e-6


@pytest.mark.parametrize(
    ("name", "family", "hub_id"),
    [
        ("bge-m3", "xlm-roberta", "BAAI/bge-m3"),
        ("bge-small-en-v1.5", "bert", "BAAI/bge-small-en-v1.5"),
        ("xlm-roberta-base", "xlm-roberta", "FacebookAI/xlm-roberta-base"),
    ],
)
def test_catalog_entries(name, family, hub_id):
    entry = CATALOG[name]
    assert (entry.family, entry.hub_id, entry.license) == (family, hub_id, "mit")
    if name.startswith("bge"):
        assert entry.head_defaults == {"pooling": "cls", "normalize_embeddings": True}
        assert entry.supported_heads() == (
            "embedding", "sequence-classification", "sequence-labeling", "sequence-labeling-crf",
        )  # fmt: skip
    else:
        assert entry.head_defaults == {} and "masked-lm" in entry.supported_heads()
    assert entry.card_path.is_file()


def test_unilm_seq2seq_reads_and_exports_the_masked_lm_layout(tmp_path):
    """The UniLM head has the masked LM's weights: it loads an XLM-R masked-LM directory, and
    ``save_reference`` writes one transformers loads (with a plain encoder mask)."""
    reference = _reference("masked-lm")
    reference.save_pretrained(tmp_path / "masked-lm")
    seq2seq = zoo.XLMRobertaForSeq2Seq.from_pretrained(tmp_path / "masked-lm").eval()
    seq2seq.save_reference(tmp_path / "export")
    saved = json.loads((tmp_path / "export" / "config.json").read_text())
    assert saved["model_type"] == "xlm-roberta" and saved["architectures"] == ["XLMRobertaForMaskedLM"]
    exported = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "export").eval()
    assert type(exported) is transformers.XLMRobertaForMaskedLM
    for name, tensor in reference.state_dict().items():
        assert torch.equal(tensor, exported.state_dict()[name]), name
