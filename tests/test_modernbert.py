"""ModernBERT (``zoo/models/modernbert``) against transformers' ModernBERT, same weights, both directions.

* parity: a transformers ``ModernBertModel`` / ``ModernBertForMaskedLM`` / ``ModernBertForSequenceClassification``
  / ``ModernBertForTokenClassification`` directory loads with ``zoo.load``, and the zoo classes'
  ``save_pretrained`` (transformers layout by default) loads in transformers' Auto classes; logits, every
  hidden state and the loss agree within 1e-4 in fp32 on left- and right-padded batches whose rows are
  longer than the local window, sdpa and eager, with biases off (ModernBERT-base) and on;
* the band and the two rotary bases really matter (so the parity above tests them);
* what the zoo does not implement is a ``ConfigError`` naming the field;
* the heads load transformers' layout (``head.`` + ``classifier.``), the CRF head from a token classifier,
  packed rows equal their records alone, LoRA's defaults, the catalog entry and its card.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from reference_models import VOCAB, padded_batch
from tiny_models import wordpiece_tokenizer

import zoo
from auto_loader import get_entry
from tasks.base import model_inputs
from trainers.lora import apply_lora
from zoo.family import get_family, head_class, supported_heads
from zoo.models.modernbert import (
    ModernBertConfig,
    ModernBertForMaskedLM,
    ModernBertForSentenceEmbedding,
    ModernBertForSequenceClassification,
    ModernBertForTokenClassification,
    ModernBertForTokenClassificationCRF,
    ModernBertModel,
)

TOL = 1e-4
PAD = 0
NUM_LABELS = 3
LAYERS = 3
# local_attention 4: two keys either side, far shorter than the 12- and 7-token rows of padded_batch.
# global_attn_every_n_layers 2: layers [global, local, global]. The two bases differ a lot.
REFERENCE_SHAPE = dict(
    vocab_size=VOCAB, hidden_size=64, num_hidden_layers=LAYERS, num_attention_heads=4, intermediate_size=96,
    max_position_embeddings=64, local_attention=4, global_attn_every_n_layers=2, global_rope_theta=1000.0,
    local_rope_theta=50.0, pad_token_id=PAD, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2,
    num_labels=NUM_LABELS,
)  # fmt: skip
VARIANTS = {
    "base-like": dict(classifier_pooling="cls"),  # ModernBERT-base: no biases, tied decoder
    "biased": dict(
        attention_bias=True,
        mlp_bias=True,
        norm_bias=True,
        classifier_bias=True,
        decoder_bias=False,
        classifier_pooling="mean",
        tie_word_embeddings=False,
        hidden_activation="gelu_pytorch_tanh",
        classifier_activation="silu",
    ),  # fmt: skip
}
KINDS = {  # kind -> (transformers class, zoo class, Auto class)
    "base": (transformers.ModernBertModel, ModernBertModel, transformers.AutoModel),
    "masked-lm": (
        transformers.ModernBertForMaskedLM,
        ModernBertForMaskedLM,
        transformers.AutoModelForMaskedLM,
    ),
    "sequence-classification": (
        transformers.ModernBertForSequenceClassification,
        ModernBertForSequenceClassification,
        transformers.AutoModelForSequenceClassification,
    ),
    "sequence-labeling": (
        transformers.ModernBertForTokenClassification,
        ModernBertForTokenClassification,
        transformers.AutoModelForTokenClassification,
    ),
}
IMPLEMENTATIONS = ("sdpa", "eager")
SENTENCES = ["john lives in paris .", "the cat sat on the mat", "i love this movie , it was good !"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _randomize(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Non-trivial values everywhere (norm weights and biases too), so a wrong mapping cannot hide."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            scale = 0.2 if "norm" in name else 0.05
            param.add_(torch.randn(param.shape, generator=generator) * scale)
    return model.eval()


def _reference_config(variant: str) -> transformers.ModernBertConfig:
    return transformers.ModernBertConfig(**REFERENCE_SHAPE, **VARIANTS[variant])


def _zoo_config(variant: str, **overrides) -> ModernBertConfig:
    """The same model as ``_reference_config(variant)``, built as a zoo config (with zoo-field overrides)."""
    config = ModernBertConfig.from_reference(_reference_config(variant).to_dict())
    return ModernBertConfig.from_dict({**config.to_dict(), **overrides}) if overrides else config


def _labels(kind: str, batch: dict) -> torch.Tensor | None:
    mask = batch["attention_mask"]
    if kind == "masked-lm":
        labels = batch["input_ids"].masked_fill(mask == 0, -100)
        labels[:, ::2] = -100
        return labels
    if kind == "sequence-classification":
        return torch.tensor([0, 2, 1])
    if kind == "sequence-labeling":
        tags = torch.randint(NUM_LABELS, mask.shape, generator=torch.Generator().manual_seed(3))
        return tags.masked_fill(mask == 0, -100)
    return None


def _max_diff(a: torch.Tensor, b: torch.Tensor, keep: torch.Tensor | None = None) -> float:
    if keep is not None:  # padded positions are not compared
        a, b = a[keep], b[keep]
    return (a - b).abs().max().item()


@pytest.fixture(scope="module", params=list(VARIANTS))
def pairs(request, tmp_path_factory):
    """Per kind: (zoo model, transformers model) pairs: one read by ``zoo.load`` from a transformers
    directory, one written by the zoo's ``save_pretrained`` and read by the transformers Auto class."""
    variant = request.param
    result = {}
    for kind, (reference_class, zoo_class, auto_class) in KINDS.items():
        directory = tmp_path_factory.mktemp(f"{variant}-{kind}")
        torch.manual_seed(0)
        reference = _randomize(reference_class(_reference_config(variant)))
        reference.save_pretrained(directory / "transformers")
        loaded = zoo.load(directory / "transformers")
        assert type(loaded) is zoo_class, (kind, type(loaded))

        torch.manual_seed(0)
        ours = _randomize(zoo_class(_zoo_config(variant)), seed=2)
        ours.save_pretrained(directory / "zoo")
        saved = json.loads((directory / "zoo" / "config.json").read_text())
        assert saved["model_type"] == "modernbert" and saved["architectures"] == [reference_class.__name__]
        theirs = auto_class.from_pretrained(directory / "zoo").eval()
        assert type(theirs) is reference_class
        result[kind] = [(loaded, reference), (ours, theirs)]
    return variant, result


@pytest.mark.parametrize("left", [False, True], ids=["right-padded", "left-padded"])
@pytest.mark.parametrize("attn_implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_parity_with_transformers_both_ways(pairs, kind, attn_implementation, left):
    variant, models = pairs
    batch = padded_batch(PAD, left=left)
    keep = batch["attention_mask"].bool()
    labels = _labels(kind, batch)
    extra = {} if labels is None else {"labels": labels}
    for ours, theirs in models[kind]:
        ours.set_attn_implementation(attn_implementation)
        theirs.set_attn_implementation(attn_implementation)
        with torch.no_grad():
            actual = ours(**batch, **extra, output_hidden_states=True)
            expected = theirs(**batch, **extra, output_hidden_states=True)
        main = "last_hidden_state" if kind == "base" else "logits"
        assert actual[main].shape == expected[main].shape
        per_token = kind != "sequence-classification"
        differences = [_max_diff(actual[main], expected[main], keep if per_token else None)]
        assert len(actual.hidden_states) == len(expected.hidden_states) == LAYERS + 1
        differences += [_max_diff(a, e, keep) for a, e in zip(actual.hidden_states, expected.hidden_states)]
        assert max(differences) <= TOL, (variant, type(ours).__name__, attn_implementation, differences)
        if labels is not None:
            assert abs(actual.loss.item() - expected.loss.item()) <= 1e-5, (kind, variant)


def test_zoo_load_reads_the_transformers_checkpoint(pairs):
    variant, models = pairs
    model, reference = models["masked-lm"][0]
    config = model.config
    assert (config.model_type, config.reference_model_type) == ("zoo_modernbert", "modernbert")
    assert config.layer_types == ["full_attention", "sliding_attention", "full_attention"]
    assert (config.rope_parameters["rope_theta"], config.local_rope_theta) == (1000.0, 50.0)
    assert (config.local_attention, config.sliding_window) == (4, 2) and config.mlp_type == "gated"
    assert config.tie_word_embeddings == (variant == "base-like")
    assert (model.lm_head.weight is model.model.embed_tokens.weight) == config.tie_word_embeddings
    assert (model.lm_head.bias is not None) == (variant == "base-like")  # decoder_bias
    layer, zoo_layer = reference.model.layers[1], model.model.layers[1]
    gate, up = layer.mlp.Wi.weight.chunk(2)  # the activated half, then the multiplied half
    assert torch.equal(zoo_layer.mlp.gate.weight, gate) and torch.equal(zoo_layer.mlp.up.weight, up)
    assert torch.equal(zoo_layer.attn.qkv.weight, layer.attn.Wqkv.weight)
    assert type(model.model.layers[0].attn_norm) is torch.nn.Identity  # as transformers' first layer
    assert (zoo_layer.attn.qkv.bias is not None) == (variant == "biased")


def test_export_round_trips_the_transformers_weights(pairs, tmp_path):
    _, models = pairs
    model, reference = models["masked-lm"][0]
    model.save_reference(tmp_path)
    reloaded = transformers.ModernBertForMaskedLM.from_pretrained(tmp_path)
    original = reference.state_dict()
    assert set(reloaded.state_dict()) == set(original)
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, original[name]), name


def test_the_local_band_and_the_local_base_change_the_output():
    """Parity above would not notice a wrong band or a swapped base if neither changed the output."""
    batch = padded_batch(PAD)
    keep = batch["attention_mask"].bool()
    outputs = {}
    for name, overrides in {
        "model": {},
        "no band": {"local_attention": 64},
        "global base everywhere": {"local_rope_theta": 1000.0},
    }.items():
        torch.manual_seed(0)
        model = ModernBertModel(_zoo_config("base-like", **overrides))
        _randomize(model)
        with torch.no_grad():
            outputs[name] = model(**batch).last_hidden_state
    assert _max_diff(outputs["model"], outputs["no band"], keep) > 1e-2
    assert _max_diff(outputs["model"], outputs["global base everywhere"], keep) > 1e-2


# answerdotai/ModernBERT-base's config.json as the Hub holds it (transformers 4.47's field names: the
# rotary bases and the global-layer period as plain fields, no layer_types / rope_parameters).
HUB_CONFIG = {
    "architectures": ["ModernBertForMaskedLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 50281, "classifier_activation": "gelu", "classifier_bias": False, "classifier_dropout": 0.0,
    "classifier_pooling": "mean", "cls_token_id": 50281, "decoder_bias": True, "deterministic_flash_attn": False,
    "embedding_dropout": 0.0, "eos_token_id": 50282, "global_attn_every_n_layers": 3,
    "global_rope_theta": 160000.0, "gradient_checkpointing": False, "hidden_activation": "gelu",
    "hidden_size": 768, "initializer_cutoff_factor": 2.0, "initializer_range": 0.02, "intermediate_size": 1152,
    "layer_norm_eps": 1e-05, "local_attention": 128, "local_rope_theta": 10000.0, "max_position_embeddings": 8192,
    "mlp_bias": False, "mlp_dropout": 0.0, "model_type": "modernbert", "norm_bias": False, "norm_eps": 1e-05,
    "num_attention_heads": 12, "num_hidden_layers": 22, "pad_token_id": 50283,
    "position_embedding_type": "absolute", "reference_compile": True, "sep_token_id": 50282,
    "sparse_pred_ignore_index": -100, "sparse_prediction": False, "torch_dtype": "float32",
    "transformers_version": "4.47.0.dev0", "vocab_size": 50368,
}  # fmt: skip


def test_the_hub_config_of_modernbert_base_converts_both_ways():
    config = ModernBertConfig.from_reference(HUB_CONFIG)
    assert config.layer_types == ["full_attention" if i % 3 == 0 else "sliding_attention" for i in range(22)]
    assert (config.rope_parameters["rope_theta"], config.local_rope_theta, config.sliding_window) == (
        160000.0, 10000.0, 64,
    )  # fmt: skip
    assert (config.classifier_pooling, config.layer_norm_eps, config.norm_bias, config.pad_token_id) == (
        "mean", 1e-5, False, 50283,
    )  # fmt: skip
    reference = config.to_reference("ModernBertForMaskedLM")
    assert reference.layer_types == config.layer_types and reference.sliding_window == 64
    assert reference.rope_parameters == {
        "full_attention": {"rope_type": "default", "rope_theta": 160000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
    }
    assert ModernBertConfig.from_reference(reference.to_dict()).to_dict() == config.to_dict()


def _save_reference_config(directory, **changes) -> None:
    data = {**_reference_config("base-like").to_dict(), **changes}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"sparse_prediction": True}, "sparse_prediction", "True"),
        (
            {"rope_parameters": {
                "full_attention": {"rope_type": "default", "rope_theta": 1000.0},
                "sliding_attention": {"rope_type": "linear", "rope_theta": 50.0, "factor": 2.0},
            }},
            "rope_parameters", "linear",
        ),
        ({"classifier_pooling": "max"}, "classifier_pooling", "max"),
    ],
    ids=["sparse_prediction", "rope_type", "classifier_pooling"],
)  # fmt: skip
def test_unsupported_checkpoint_values_are_config_errors(tmp_path, changes, field, value):
    _save_reference_config(tmp_path, **changes)
    with pytest.raises(zoo.ConfigError, match=field) as error:
        ModernBertForMaskedLM.init_from_json(tmp_path / "config.json")
    assert value in str(error.value)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"hidden_dropout": 0.1}, "hidden_dropout"),
        ({"norm_type": "rmsnorm"}, "norm_type"),
        ({"mlp_type": "mlp"}, "mlp_type"),
        ({"num_key_value_heads": 2}, "num_key_value_heads"),
        ({"layer_types": ["full_attention", "global"]}, "layer_types"),
        ({"classifier_pooling": "last"}, "classifier_pooling"),
        ({"rope_parameters": {"rope_type": "linear", "rope_theta": 10.0, "factor": 2.0}}, "rope_parameters"),
    ],
)
def test_unsupported_zoo_config_values_are_config_errors(overrides, field):
    shape = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4)
    with pytest.raises(zoo.ConfigError, match=field):
        ModernBertConfig(**shape, **overrides)


def test_classifiers_take_the_masked_lm_prediction_head_as_transformers_does(pairs, tmp_path):
    _, models = pairs
    _, reference = models["masked-lm"][0]
    reference.save_pretrained(tmp_path)
    theirs = transformers.ModernBertForSequenceClassification.from_pretrained(tmp_path)
    for cls in (ModernBertForSequenceClassification, ModernBertForTokenClassificationCRF):
        ours = cls.from_pretrained(tmp_path, num_labels=NUM_LABELS)
        assert torch.equal(ours.head.dense.weight, reference.head.dense.weight)
        assert torch.equal(ours.head.dense.weight, theirs.head.dense.weight)


def test_crf_head_reads_a_token_classifier_and_emits_its_logits(pairs, tmp_path):
    _, models = pairs
    _, reference = models["sequence-labeling"][0]
    reference.save_pretrained(tmp_path)
    model = ModernBertForTokenClassificationCRF.from_pretrained(tmp_path).eval()
    batch = padded_batch(PAD)
    keep = batch["attention_mask"].bool()
    with torch.no_grad():
        assert _max_diff(model(**batch).logits, reference(**batch).logits, keep) <= TOL
    tags = model.decode(model(**batch).logits, batch["attention_mask"])
    assert [len(t) for t in tags] == [12, 7, 3]


def test_packed_rows_equal_their_records_alone():
    """Position ids restarting inside a row, no attention mask: each record attends to itself only."""
    torch.manual_seed(0)
    model = _randomize(ModernBertModel(_zoo_config("base-like")))
    records = [torch.randint(3, VOCAB, (n,), generator=torch.Generator().manual_seed(n)) for n in (9, 6)]
    packed = torch.cat(records)[None]
    positions = torch.cat([torch.arange(len(r)) for r in records])[None]
    for implementation in IMPLEMENTATIONS:
        model.set_attn_implementation(implementation)
        with torch.no_grad():
            together = model(input_ids=packed, position_ids=positions).last_hidden_state[0]
            alone = torch.cat([model(input_ids=r[None]).last_hidden_state[0] for r in records])
        assert _max_diff(together, alone) <= 1e-5, implementation


def test_sentence_embedding_is_the_masked_mean_of_the_encoder():
    torch.manual_seed(0)
    model = _randomize(ModernBertForSentenceEmbedding(_zoo_config("base-like")))
    batch = padded_batch(PAD)
    with torch.no_grad():
        states = model.model(**batch).last_hidden_state
        pooled = model(**batch).pooler_output
    weights = batch["attention_mask"][..., None].float()
    assert _max_diff(pooled, (states * weights).sum(1) / weights.sum(1)) <= 1e-6


def test_sentence_transformers_directory_gives_the_same_vectors(tmp_path):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    tokenizer = wordpiece_tokenizer()
    config = _zoo_config(
        "base-like", vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, normalize_embeddings=True
    )
    torch.manual_seed(0)
    model = _randomize(ModernBertForSentenceEmbedding(config))
    batch = model_inputs(tokenizer(SENTENCES, padding=True, return_tensors="pt"), model)
    with torch.no_grad():
        expected = model(**batch).pooler_output
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["ModernBertModel"]
    encoder = sentence_transformers.SentenceTransformer(str(tmp_path), device="cpu")
    assert type(encoder[0].auto_model) is transformers.ModernBertModel
    assert _max_diff(encoder.encode(SENTENCES, convert_to_tensor=True), expected) <= 1e-5
    reloaded = ModernBertForSentenceEmbedding.from_pretrained(tmp_path)
    assert (reloaded.config.pooling, reloaded.config.normalize_embeddings) == ("mean", True)


def test_the_family_declaration_heads_and_lora_defaults():
    family = get_family("modernbert")
    assert zoo.family_of(transformers.ModernBertConfig()) == "modernbert"
    assert set(supported_heads("modernbert")) == {
        "masked-lm", "sequence-labeling", "sequence-labeling-crf", "sequence-classification", "embedding",
    }  # fmt: skip
    assert head_class("modernbert", "sequence-labeling") is ModernBertForTokenClassification
    assert ModernBertForSequenceClassification.reference_architectures == {
        "modernbert": "ModernBertForSequenceClassification"
    }
    assert family.lora_targets == (("attn.qkv", "attn.out"), ("mlp.gate", "mlp.up", "mlp.down"))
    model = ModernBertForMaskedLM(_zoo_config("base-like"))
    wrapped = apply_lora(model)
    names = {
        name.removeprefix("base_model.model.")
        for name, module in wrapped.named_modules()
        if type(module).__module__.startswith("peft.tuners.lora") and hasattr(module, "lora_A")
    }
    assert names == {f"model.layers.{i}.attn.{p}" for i in range(LAYERS) for p in ("qkv", "out")}
    default = ModernBertConfig()  # answerdotai/ModernBERT-base
    assert (default.num_hidden_layers, default.local_attention, default.rope_parameters["rope_theta"]) == (
        22, 128, 160000.0,
    )  # fmt: skip
    assert default.layer_types[:4] == [
        "full_attention",
        "sliding_attention",
        "sliding_attention",
        "full_attention",
    ]


def test_a_lora_adapter_saves_under_transformers_names(pairs, tmp_path):
    """LoRA on the fused ``attn.qkv`` / ``attn.out`` is LoRA on ``Wqkv`` / ``Wo``: PEFT on transformers'
    class gives the same logits."""
    peft = pytest.importorskip("peft")
    _, models = pairs
    _, reference = models["masked-lm"][0]
    reference.save_pretrained(tmp_path / "base")
    wrapped = apply_lora(ModernBertForMaskedLM.from_pretrained(tmp_path / "base"))
    with torch.no_grad():
        for name, param in wrapped.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1, generator=torch.Generator().manual_seed(4))
    wrapped.eval()
    zoo.save_adapter(wrapped, tmp_path / "adapter")
    fresh = transformers.ModernBertForMaskedLM.from_pretrained(tmp_path / "base")  # PEFT wraps it in place
    theirs = peft.PeftModel.from_pretrained(fresh, tmp_path / "adapter").eval()
    batch = padded_batch(PAD)
    with torch.no_grad():
        difference = _max_diff(
            wrapped(**batch).logits, theirs(**batch).logits, batch["attention_mask"].bool()
        )
    assert difference <= 1e-5


def test_catalog_entry_and_card():
    entry = get_entry("modernbert-base")
    assert (entry.family, entry.hub_id, entry.license) == (
        "modernbert",
        "answerdotai/ModernBERT-base",
        "apache-2.0",
    )
    text = entry.card_path.read_text(encoding="utf-8")
    assert "answerdotai/ModernBERT-base" in text and "do not ship on PyPI" in text
