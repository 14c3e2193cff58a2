"""The Gemma 3 (text) family against transformers' Gemma3ForCausalLM / Gemma3TextForSequenceClassification,
same weights through the weight map, both ways.

Gemma 3's own parts are checked where they matter: the per-head q/k norms, two rotaries (the global
layers' base and linear scaling differ from the sliding layers'), the window (4) shorter than the batches
(12 tokens) and than generation, and the optional final-logit soft-cap.
"""

import json

import pytest
import torch
import transformers
from reference_models import VOCAB, padded_batch
from test_gemma2 import GENERATION, IMPLEMENTATIONS, _labels, _max_diff, _randomize

import zoo
from auto_loader import get_entry
from zoo.family import head_class, supported_heads
from zoo.models.gemma3 import Gemma3Config, Gemma3ForCausalLM

COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=24,
    query_pre_attn_scalar=20,
    sliding_window=4,
    max_position_embeddings=128,
    layer_types=["sliding_attention", "full_attention", "sliding_attention"],
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)
VARIANTS = {
    "gemma3": dict(rope_parameters=None),  # transformers' defaults: global base 1e6, local 1e4
    "gemma3-scaled-capped": dict(
        rope_parameters={
            "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 5000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 50.0},
        },
        final_logit_softcapping=3.0,
        attention_bias=True,
        tie_word_embeddings=False,
    ),
}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _reference(model_class, **overrides):
    torch.manual_seed(0)
    reference = model_class(transformers.Gemma3TextConfig(**{**COMMON, **overrides}))
    _randomize(reference)
    return reference.eval()


@pytest.fixture(scope="module", params=list(VARIANTS))
def from_transformers(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(request.param)
    reference = _reference(transformers.Gemma3ForCausalLM, **VARIANTS[request.param])
    reference.save_pretrained(directory)
    return request.param, reference, zoo.load(directory).eval()


@pytest.fixture(scope="module")
def from_zoo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("zoo-gemma3")
    torch.manual_seed(0)
    config = Gemma3Config(
        **COMMON,
        rope_parameters={"rope_type": "linear", "factor": 4.0, "rope_theta": 2000.0},
        sliding_rope_parameters={"rope_type": "default", "rope_theta": 30.0},
        final_logit_softcapping=3.0,
    )
    model = Gemma3ForCausalLM(config)
    _randomize(model, seed=2)
    model.eval().save_pretrained(directory)
    reference = transformers.AutoModelForCausalLM.from_pretrained(directory).eval()
    return directory, model, reference


# -- transformers checkpoint -> zoo ------------------------------------------------------------------
def test_zoo_load_reads_the_transformers_checkpoint(from_transformers):
    kind, reference, model = from_transformers
    assert type(model) is Gemma3ForCausalLM
    config = model.config
    assert (config.model_type, config.reference_model_type) == ("zoo_gemma3", "gemma3_text")
    rope = reference.config.rope_parameters
    assert config.rope_parameters == rope["full_attention"]
    assert config.sliding_rope_parameters == rope["sliding_attention"]
    assert config.layer_types == COMMON["layer_types"] and config.attn_logit_softcapping is None
    assert config.final_logit_softcapping == reference.config.final_logit_softcapping
    attention, ours = reference.model.layers[1].self_attn, model.model.layers[1].attn
    assert torch.equal(ours.q_norm.weight, attention.q_norm.weight) and ours.q_norm.weight.shape == (24,)
    assert torch.equal(ours.k_norm.weight, attention.k_norm.weight)
    assert torch.equal(
        model.model.layers[2].post_mlp_norm.weight,
        reference.model.layers[2].post_feedforward_layernorm.weight,
    )
    # the two rotaries are transformers' per layer type
    rotary = reference.model.rotary_emb
    assert torch.equal(model.model.rotary.inv_freq, rotary.full_attention_inv_freq)
    assert torch.equal(model.model.sliding_rotary.inv_freq, rotary.sliding_attention_inv_freq)


@pytest.mark.parametrize("left", [True, False], ids=["left-padded", "right-padded"])
@pytest.mark.parametrize("attn_implementation", IMPLEMENTATIONS)
def test_logits_every_hidden_state_and_loss_match(from_transformers, attn_implementation, left):
    _, reference, model = from_transformers
    reference.set_attn_implementation(attn_implementation)
    model.set_attn_implementation(attn_implementation)
    batch = padded_batch(0, left=left)
    keep = batch["attention_mask"].bool()
    labels = _labels(batch)
    with torch.no_grad():
        expected = reference(**batch, labels=labels, output_hidden_states=True)
        actual = model(**batch, labels=labels, output_hidden_states=True)
    assert _max_diff(actual.logits, expected.logits, keep) <= 1e-4
    assert len(actual.hidden_states) == len(expected.hidden_states) == COMMON["num_hidden_layers"] + 1
    for a, e in zip(actual.hidden_states, expected.hidden_states):
        assert _max_diff(a, e, keep) <= 1e-4
    assert abs(actual.loss.item() - expected.loss.item()) <= 1e-5


def test_the_local_rotary_and_the_window_matter(from_transformers):
    kind, _, model = from_transformers
    batch = padded_batch(0, left=True)
    keep = batch["attention_mask"].bool()
    changes = {
        "sliding_rope_parameters": dict(model.config.rope_parameters),  # the global rotary everywhere
        "sliding_window": 64,
    }
    with torch.no_grad():
        logits = model(**batch).logits
        for field, value in changes.items():
            other = Gemma3ForCausalLM(Gemma3Config.from_dict({**model.config.to_dict(), field: value})).eval()
            other.load_state_dict(model.state_dict())
            assert _max_diff(other(**batch).logits, logits, keep) > 1e-3, field
    if kind == "gemma3-scaled-capped":
        assert logits.abs().max().item() <= 3.0 and not model.fuses_loss(model.lm_head)


@pytest.mark.parametrize("num_beams", [1, 3], ids=["greedy", "beam"])
def test_generation_past_the_window_matches_cached_uncached_padded_and_transformers(
    from_transformers, num_beams
):
    _, reference, model = from_transformers
    batch = padded_batch(0, left=True)
    kwargs = {**GENERATION, "num_beams": num_beams}
    expected = reference.generate(**batch, **kwargs)
    assert torch.equal(model.generate(**batch, **kwargs), expected)
    assert torch.equal(model.generate(**batch, **kwargs, use_cache=False), expected)
    for row in range(3):
        alone = batch["input_ids"][row : row + 1, batch["attention_mask"][row].bool()]
        ours = model.generate(alone, **kwargs)
        assert torch.equal(ours, reference.generate(alone, **kwargs)), row
        assert torch.equal(ours[0, -10:], expected[row, -10:]), row


# -- zoo -> transformers -----------------------------------------------------------------------------
def test_zoo_save_loads_in_plain_transformers_with_the_same_logits(from_zoo):
    directory, model, reference = from_zoo
    config = json.loads((directory / "config.json").read_text())
    assert config["model_type"] == "gemma3_text" and config["architectures"] == ["Gemma3ForCausalLM"]
    assert config["rope_parameters"]["sliding_attention"]["rope_theta"] == 30.0
    assert config["rope_parameters"]["full_attention"]["factor"] == 4.0
    assert type(reference) is transformers.Gemma3ForCausalLM
    for attn_implementation in IMPLEMENTATIONS:
        reference.set_attn_implementation(attn_implementation)
        model.set_attn_implementation(attn_implementation)
        for left in (True, False):
            batch = padded_batch(0, left=left, seed=3)
            labels = _labels(batch)
            with torch.no_grad():
                ours, theirs = model(**batch, labels=labels), reference(**batch, labels=labels)
            diff = _max_diff(ours.logits, theirs.logits, batch["attention_mask"].bool())
            assert diff <= 1e-4, (attn_implementation, left, diff)
            assert abs(ours.loss.item() - theirs.loss.item()) <= 1e-5


def test_export_round_trips_the_transformers_weights(from_transformers, tmp_path):
    _, reference, model = from_transformers
    model.save_reference(tmp_path)
    reloaded = transformers.Gemma3ForCausalLM.from_pretrained(tmp_path)
    original = reference.state_dict()
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, original[name]), name
    assert reloaded.config.rope_parameters == reference.config.rope_parameters
    assert reloaded.config.layer_types == reference.config.layer_types


# -- bad input ---------------------------------------------------------------------------------------
def test_a_multimodal_gemma3_checkpoint_is_refused_by_name(tmp_path):
    text = transformers.Gemma3TextConfig(**COMMON)
    config = transformers.Gemma3Config(text_config=text.to_dict())
    config.architectures = ["Gemma3ForConditionalGeneration"]
    config.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["vision_config"]
    with pytest.raises(zoo.ConfigError, match="model_type='gemma3'.*vision tower.*gemma3_text"):
        zoo.load(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"attn_logit_softcapping": 50.0}, "attn_logit_softcapping=50.0"),
        ({"layer_types": ["sliding_attention", "linear_attention", "full_attention"]}, "layer_types.*linear"),
        ({"use_bidirectional_attention": True}, "use_bidirectional_attention=True"),
    ],
    ids=["attention-softcap", "linear-attention-layer", "bidirectional"],
)
def test_a_checkpoint_the_zoo_does_not_implement_is_refused(change, message, tmp_path):
    data = {**transformers.Gemma3TextConfig(**COMMON).to_dict(), **change}
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(zoo.ConfigError, match=message):
        Gemma3ForCausalLM.init_from_json(tmp_path / "config.json")


def test_zoo_config_values_gemma3_does_not_have_are_refused():
    cases = {
        "attn_logit_softcapping=2.0": dict(attn_logit_softcapping=2.0),
        "sliding_rope_parameters\\['rope_type'\\]": dict(sliding_rope_parameters={"rope_type": "spiral"}),
        "sliding_rope_parameters\\['rope_theta'\\]": dict(sliding_rope_parameters={"rope_type": "default"}),
        "reference_model_type='gemma3'": dict(reference_model_type="gemma3"),
    }
    for message, change in cases.items():
        with pytest.raises(zoo.ConfigError, match=message):
            Gemma3Config(**{**COMMON, **change})


# -- heads -------------------------------------------------------------------------------------------
def test_every_head_kind_builds_and_returns_a_loss():
    assert supported_heads("gemma3") == (
        "causal-lm", "seq2seq", "sequence-labeling", "sequence-labeling-crf", "sequence-classification", "embedding",
    )  # fmt: skip
    batch = padded_batch(0, left=True)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    labels = {
        "sequence-classification": {"labels": torch.tensor([0, 2, 1])},
        "embedding": dict(
            pair_input_ids=ids.flip(0), pair_attention_mask=mask.flip(0), labels=torch.tensor([0.2, 0.9, 0.5])
        ),
    }
    tags = torch.randint(0, 3, ids.shape, generator=torch.Generator().manual_seed(0)).masked_fill(
        mask == 0, -100
    )
    for head in supported_heads("gemma3"):
        torch.manual_seed(0)
        model = head_class("gemma3", head)(Gemma3Config(**COMMON, num_labels=3))
        extra = labels.get(head, {"labels": tags if head.startswith("sequence-labeling") else _labels(batch)})
        output = model(**batch, **extra)
        assert output.loss.ndim == 0 and torch.isfinite(output.loss) and output.loss > 0, head
        output.loss.backward()
        assert model.model.layers[0].attn.k_norm.weight.grad is not None, head


@pytest.mark.parametrize("left", [True, False], ids=["left-padded", "right-padded"])
def test_sequence_classification_matches_transformers(left, tmp_path):
    reference = _reference(transformers.Gemma3TextForSequenceClassification, num_labels=3)
    reference.save_pretrained(tmp_path)
    model = zoo.load(tmp_path).eval()
    assert type(model).__name__ == "Gemma3ForSequenceClassification"
    assert model.transformers_architecture == "Gemma3TextForSequenceClassification"
    batch = padded_batch(0, left=left)
    with torch.no_grad():
        assert (model(**batch).logits - reference(**batch).logits).abs().max().item() <= 1e-4
    model.save_pretrained(tmp_path / "again")
    again = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "again").eval()
    assert type(again) is transformers.Gemma3TextForSequenceClassification
    with torch.no_grad():
        assert (again(**batch).logits - reference(**batch).logits).abs().max().item() <= 1e-4


def test_catalog_entry_and_card():
    entry = get_entry("gemma-3-270m")
    assert (entry.family, entry.hub_id, entry.license) == ("gemma3", "google/gemma-3-270m", "gemma")
    assert entry.card_path.is_file()
    assert "google/gemma-3-270m" in entry.card_path.read_text(encoding="utf-8")
