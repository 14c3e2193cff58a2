"""DeBERTa-v2 / v3 (``zoo/models/deberta_v2``): BERT's post-LN encoder with disentangled attention.

* parity both ways on the same random weights (norms and biases too): a transformers ``DebertaV2Model`` /
  ``DebertaV2ForMaskedLM`` (both head layouts) / ``DebertaV2ForSequenceClassification`` /
  ``DebertaV2ForTokenClassification`` directory loads with ``zoo.load``, and the zoo classes'
  ``save_pretrained`` (transformers layout by default) loads in transformers' Auto classes; logits and every
  hidden state agree within 1e-4 in fp32 on right- and left-padded batches, at every position (padding
  included: the zoo masks padding queries as transformers does), with the zoo's sdpa and eager attention
  (transformers implements DeBERTa's attention in eager only);
* a DeBERTa-v2-style config (separate position projections, absolute positions, token types, no buckets,
  no relative-embedding norm) and the losses match too;
* Microsoft's checkpoint names (``lm_predictions.*``, the v3 discriminator's ``mask_predictions.*``, unused
  absolute positions) load; values the family does not implement raise ``ConfigError`` naming the field.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from reference_models import padded_batch
from safetensors.torch import load_file, save_file

import zoo
from trainers.lora import apply_lora
from zoo.errors import ConfigError, WeightsMismatchError
from zoo.family import get_family, head_class, supported_heads
from zoo.models.deberta_v2 import (
    DebertaV2Config,
    DebertaV2ForMaskedLM,
    DebertaV2ForSentenceEmbedding,
    DebertaV2ForSequenceClassification,
    DebertaV2ForTokenClassification,
    DebertaV2ForTokenClassificationCRF,
    DebertaV2Model,
)

TOL = 1e-4
VOCAB = 211  # reference_models.padded_batch draws ids below it
PAD = 0
NUM_LABELS = 3
SHAPE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
# DeBERTa-v3's layout (microsoft/deberta-v3-base), tiny: 8 buckets put distances >= 4 on the log scale
V3 = dict(
    relative_attention=True, position_buckets=8, max_relative_positions=-1, pos_att_type="p2c|c2p",
    share_att_key=True, norm_rel_ebd="layer_norm", position_biased_input=False, type_vocab_size=0,
)  # fmt: skip
# DeBERTa-v2's other options: separate position projections, absolute positions, token types, no buckets,
# the convolution beside the first layer (xlarge / xxlarge)
V2 = dict(
    relative_attention=True, position_buckets=-1, max_relative_positions=6, pos_att_type=["c2p", "p2c"],
    share_att_key=False, norm_rel_ebd="none", position_biased_input=True, type_vocab_size=2,
    conv_kernel_size=3, conv_groups=2, conv_act="gelu",
)  # fmt: skip
# content attention only (scaled by sqrt(3 * head_dim) all the same, as transformers does), absolute positions
NO_RELATIVE = dict(
    relative_attention=False, pos_att_type="c2p|p2c", position_biased_input=True, norm_rel_ebd="none"
)
CLASSES = {  # kind: (transformers class, zoo class, Auto class, transformers config overrides)
    "base": (transformers.DebertaV2Model, DebertaV2Model, transformers.AutoModel, {}),
    "masked-lm": (
        transformers.DebertaV2ForMaskedLM, DebertaV2ForMaskedLM, transformers.AutoModelForMaskedLM,
        {"legacy": False},
    ),
    "masked-lm-legacy": (
        transformers.DebertaV2ForMaskedLM, DebertaV2ForMaskedLM, transformers.AutoModelForMaskedLM,
        {"legacy": True},
    ),
    "sequence-classification": (
        transformers.DebertaV2ForSequenceClassification, DebertaV2ForSequenceClassification,
        transformers.AutoModelForSequenceClassification, {"pooler_hidden_act": "tanh"},
    ),
    "sequence-labeling": (
        transformers.DebertaV2ForTokenClassification, DebertaV2ForTokenClassification,
        transformers.AutoModelForTokenClassification, {},
    ),
}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _randomize(model: torch.nn.Module, seed: int = 1, scale: float = 0.05) -> torch.nn.Module:
    """Non-trivial values everywhere (biases, norms and the relative embeddings too)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * scale)
    return model.eval()


def _reference_config(kind: str, layout: dict = V3) -> transformers.DebertaV2Config:
    return transformers.DebertaV2Config(
        vocab_size=VOCAB, max_position_embeddings=64, num_labels=NUM_LABELS, pad_token_id=PAD,
        **SHAPE, **layout, **CLASSES[kind][3],
    )  # fmt: skip


def _reference(kind: str, layout: dict = V3) -> transformers.PreTrainedModel:
    torch.manual_seed(0)
    return _randomize(CLASSES[kind][0](_reference_config(kind, layout)))


def _zoo(kind: str, layout: dict = V3) -> torch.nn.Module:
    torch.manual_seed(0)
    reference = _reference_config(kind, layout).to_dict()
    config = DebertaV2Config.from_reference({**reference, "hidden_dropout_prob": 0.0})
    return _randomize(CLASSES[kind][1](config))


def _batch(left: bool = False, token_types: bool = False) -> dict[str, torch.Tensor]:
    batch = padded_batch(PAD, left=left)
    if token_types:  # the second half of each row is segment 1
        batch["token_type_ids"] = (torch.arange(12) >= 6).long().expand(3, -1).clone()
    return batch


def _compare(ours, theirs, kind: str) -> float:
    """The largest difference over the main output and every hidden state, at every position."""
    main = "last_hidden_state" if kind == "base" else "logits"
    assert ours[main].shape == theirs[main].shape
    differences = [(ours[main] - theirs[main]).abs().max().item()]
    assert len(ours.hidden_states) == len(theirs.hidden_states) == SHAPE["num_hidden_layers"] + 1
    differences += [(a - e).abs().max().item() for a, e in zip(ours.hidden_states, theirs.hidden_states)]
    return max(differences)


def _forward(model, batch, **kwargs):
    with torch.no_grad():
        return model(**batch, output_hidden_states=True, **kwargs)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """kind -> (transformers model, zoo.load of its directory, zoo model, Auto class load of its save)."""
    pairs = {}
    for kind, (reference_class, zoo_class, auto_class, _) in CLASSES.items():
        directory = tmp_path_factory.mktemp(kind)
        reference = _reference(kind)
        reference.save_pretrained(directory / "transformers")
        model = zoo.load(directory / "transformers")
        assert type(model) is zoo_class and model.config.model_type == "zoo_deberta_v2"
        ours = _zoo(kind)
        ours.save_pretrained(directory / "zoo")
        saved = json.loads((directory / "zoo" / "config.json").read_text())
        assert saved["model_type"] == "deberta-v2" and saved["architectures"] == [reference_class.__name__]
        theirs = auto_class.from_pretrained(directory / "zoo").eval()
        assert type(theirs) is reference_class
        pairs[kind] = (reference, model, ours, theirs)
    return pairs


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_parity_with_transformers_both_ways(loaded, kind, attn_implementation):
    reference, model, ours, theirs = loaded[kind]
    for zoo_model, transformers_model in ((model, reference), (ours, theirs)):
        zoo_model.set_attn_implementation(attn_implementation)
        for left in (False, True):
            batch = _batch(left)
            difference = _compare(_forward(zoo_model, batch), _forward(transformers_model, batch), kind)
            assert difference <= TOL, (
                f"{type(zoo_model).__name__} ({attn_implementation}, {'left' if left else 'right'} padded): "
                f"{difference:.2e}"
            )


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_parity_without_relative_attention(attn_implementation, tmp_path):
    reference = _reference("base", NO_RELATIVE)
    reference.save_pretrained(tmp_path)
    model = zoo.load(tmp_path, attn_implementation=attn_implementation)
    assert model.rel_embeddings is None and model.config.attention_scaling == pytest.approx((16 * 3) ** -0.5)
    batch = _batch(left=True)
    assert _compare(_forward(model, batch), _forward(reference, batch), "base") <= TOL


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_parity_of_the_deberta_v2_options(attn_implementation, tmp_path):
    """Separate pos_key / pos_query projections, absolute positions, token types, unbucketed relative
    positions clamped at max_relative_positions, no relative-embedding norm, the first layer's grouped
    convolution: both ways."""
    reference = _reference("masked-lm", V2)
    reference.save_pretrained(tmp_path / "transformers")
    model = zoo.load(tmp_path / "transformers", attn_implementation=attn_implementation)
    assert not model.config.share_att_key and model.model.embed_positions is not None
    assert model.model.rel_norm is None and model.model.layers[0].attn.pos_key is not None
    assert model.model.conv.conv.groups == 2
    model.save_pretrained(tmp_path / "zoo")
    theirs = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "zoo").eval()
    batch = _batch(token_types=True)
    expected = _forward(reference, batch)
    assert _compare(_forward(model, batch), expected, "masked-lm") <= TOL
    assert _compare(_forward(theirs, batch), expected, "masked-lm") <= TOL


def test_losses_match_transformers(loaded):
    batch = _batch()
    generator = torch.Generator().manual_seed(2)
    tags = torch.randint(NUM_LABELS, (3, 12), generator=generator).masked_fill(
        batch["attention_mask"] == 0, -100
    )
    mlm = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    mlm[:, ::2] = -100
    labels = {
        "masked-lm": mlm,
        "masked-lm-legacy": mlm,
        "sequence-classification": torch.tensor([0, 2, 1]),
        "sequence-labeling": tags,
    }
    for kind, label in labels.items():
        reference, model, _, _ = loaded[kind]
        with torch.no_grad():
            ours, theirs = model(**batch, labels=label).loss, reference(**batch, labels=label).loss
        assert abs(ours.item() - theirs.item()) <= 1e-5 and ours.item() > 0.5, kind


def test_the_deberta_v3_config_converts_both_ways():
    published = {  # microsoft/deberta-v3-base config.json
        "model_type": "deberta-v2", "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
        "max_position_embeddings": 512, "relative_attention": True, "position_buckets": 256,
        "norm_rel_ebd": "layer_norm", "share_att_key": True, "pos_att_type": "p2c|c2p", "layer_norm_eps": 1e-7,
        "max_relative_positions": -1, "position_biased_input": False, "num_attention_heads": 12,
        "num_hidden_layers": 12, "type_vocab_size": 0, "vocab_size": 128100,
    }  # fmt: skip
    config = DebertaV2Config.from_reference(published)
    defaults = DebertaV2Config()
    for field in (*published.keys() - {"model_type", "hidden_dropout_prob", "attention_probs_dropout_prob"},):
        if field != "pos_att_type":
            assert getattr(config, field) == getattr(defaults, field), field
    assert config.pos_att_type == defaults.pos_att_type == ["p2c", "c2p"]
    assert config.relative_span == 256 and config.attention_scaling == pytest.approx((64 * 3) ** -0.5)
    back = config.to_reference("DebertaV2Model")
    for key, value in published.items():
        expected = ["p2c", "c2p"] if key == "pos_att_type" else value
        assert getattr(back, key) == expected, key


def _write_reference_config(directory, **changes) -> None:
    reference = _reference("base")
    reference.save_pretrained(directory)
    data = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**data, **changes}))


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"conv_kernel_size": 2}, "conv_kernel_size"),
        ({"embedding_size": 32}, "embedding_size"),
        ({"attention_head_size": 8}, "attention_head_size"),
        ({"pooler_hidden_size": 32}, "pooler_hidden_size"),
        ({"pos_att_type": "p2c|p2p"}, "pos_att_type"),
        ({"norm_rel_ebd": "layer_norm|batch_norm"}, "norm_rel_ebd"),
        ({"position_buckets": 0}, "position_buckets"),
        ({"type_vocab_size": -1}, "type_vocab_size"),
        ({"conv_kernel_size": 3, "conv_act": "swish_v9"}, "conv_act"),
    ],
)
def test_unsupported_values_raise_config_error(tmp_path, changes, field):
    _write_reference_config(tmp_path, **changes)
    with pytest.raises(ConfigError, match=field) as error:
        zoo.load(tmp_path)
    message = str(error.value)
    assert str(changes[field]).split("|")[-1] in message, message  # the value, or its unsupported part
    assert "supported" in message or "must be" in message, message


def test_an_untied_enhanced_head_is_refused():
    with pytest.raises(ConfigError, match="legacy=False with tie_word_embeddings=False"):
        DebertaV2Config(legacy=False, tie_word_embeddings=False)


def test_microsofts_checkpoint_names_load(loaded, tmp_path):
    """``lm_predictions.lm_head.*`` with the discriminator's ``mask_predictions.*`` and absolute positions
    a v3 model does not use: the masked LM loads (whatever ``legacy`` says: the maths is the same) and
    gives transformers' ``legacy=False`` logits; a missing head weight is named as the checkpoint names it."""
    reference = loaded["masked-lm"][0]
    reference.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    extra = {
        "mask_predictions.dense.weight": torch.zeros(64, 64),
        "mask_predictions.classifier.bias": torch.zeros(1),
        "deberta.embeddings.position_embeddings.weight": torch.zeros(64, 64),
    }
    save_file({**tensors, **extra}, tmp_path / "model.safetensors", metadata={"format": "pt"})
    data = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**data, "legacy": True}))
    model = zoo.load(tmp_path)
    assert model.config.legacy
    batch = _batch()
    assert _compare(_forward(model, batch), _forward(reference, batch), "masked-lm") <= TOL
    tokens = DebertaV2ForTokenClassification.from_pretrained(tmp_path, num_labels=NUM_LABELS)
    assert (tokens.model.embed_tokens.weight == model.model.embed_tokens.weight).all()

    del tensors["lm_predictions.lm_head.dense.weight"]
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(WeightsMismatchError, match="lm_predictions.lm_head.dense.weight"):
        zoo.load(tmp_path)


def test_heads_lora_and_the_family_declaration(loaded):
    family = get_family("deberta-v2")
    assert zoo.family_of(transformers.DebertaV2Config()) == "deberta-v2"
    assert supported_heads("deberta-v2") == (
        "masked-lm", "sequence-labeling", "sequence-labeling-crf", "sequence-classification", "embedding",
    )  # fmt: skip
    assert family.lora_targets == (("attn.qkv", "attn.out"), ("mlp.up", "mlp.down"))
    assert head_class("deberta-v2", "sequence-labeling-crf") is DebertaV2ForTokenClassificationCRF

    base = loaded["base"][1]
    batch = _batch()
    config = DebertaV2Config.from_dict({**base.config.to_dict(), "num_labels": NUM_LABELS})
    embedder = DebertaV2ForSentenceEmbedding(config).eval()
    embedder.model.load_state_dict(base.state_dict())
    states = _forward(base, batch).last_hidden_state
    weights = batch["attention_mask"][..., None].float()
    mean = (states * weights).sum(1) / weights.sum(1)
    assert (_forward(embedder, batch).pooler_output - mean).abs().max().item() <= 1e-6

    crf = DebertaV2ForTokenClassificationCRF(config).eval()
    crf.model.load_state_dict(base.state_dict())
    tags = torch.zeros(3, 12, dtype=torch.long).masked_fill(batch["attention_mask"] == 0, -100)
    output = _forward(crf, batch, labels=tags)
    assert torch.isfinite(output.loss) and output.logits.shape == (3, 12, NUM_LABELS)

    wrapped = apply_lora(loaded["masked-lm"][1])
    names = {n for n, _ in wrapped.named_modules() if n.endswith(("attn.qkv", "attn.out"))}
    assert len(names) == 2 * SHAPE["num_hidden_layers"]


def test_eager_attention_probabilities_match_transformers(loaded):
    reference, model, _, _ = loaded["base"]
    model.set_attn_implementation("eager")
    batch = _batch(left=True)
    ours = _forward(model, batch, output_attentions=True).attentions
    theirs = _forward(reference, batch, output_attentions=True).attentions
    assert len(ours) == len(theirs) == SHAPE["num_hidden_layers"]
    assert max((a - e).abs().max().item() for a, e in zip(ours, theirs)) <= 1e-6


def test_a_packed_row_equals_its_records_alone(loaded):
    """position_ids restarting inside a row and no attention_mask (``tasks.packing``): a block-diagonal mask,
    and the relative positions inside each record are those of the record alone."""
    model = loaded["base"][1]
    ids = padded_batch(PAD)["input_ids"][0]
    first, second = ids[:5], ids[5:12]
    packed = _forward(
        model, {"input_ids": ids[None], "position_ids": torch.cat([torch.arange(5), torch.arange(7)])[None]}
    )
    for record, span in ((first, slice(0, 5)), (second, slice(5, 12))):
        alone = _forward(model, {"input_ids": record[None]}).last_hidden_state[0]
        assert (packed.last_hidden_state[0, span] - alone).abs().max().item() <= 1e-5
