"""The Gemma 2 family against transformers' Gemma2 classes, same weights through the weight map, both ways.

The sliding window (4) is shorter than every padded batch (12 tokens) and than generation, and the soft-caps
are small enough (2 and 3) to change the outputs: a missing cap, norm offset, embedding scale or wrong
window would show. transformers runs Gemma 2 in eager attention only (it refuses sdpa for the class), so
both zoo kernels are compared with transformers' eager; zoo sdpa with a soft-cap runs the eager maths.
"""

import json

import pytest
import torch
import transformers
from reference_models import VOCAB, padded_batch

import zoo
from auto_loader import get_entry
from trainers.lora import apply_lora
from zoo.family import head_class, supported_heads
from zoo.models.gemma2 import Gemma2Config, Gemma2ForCausalLM

COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=24,  # != hidden_size / heads
    query_pre_attn_scalar=20,  # != head_dim
    sliding_window=4,
    max_position_embeddings=128,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)
VARIANTS = {
    "gemma2-softcapped": dict(attn_logit_softcapping=2.0, final_logit_softcapping=3.0),
    "gemma2-uncapped-bias": dict(
        attn_logit_softcapping=None,
        final_logit_softcapping=None,
        attention_bias=True,
        tie_word_embeddings=False,
        layer_types=["full_attention", "sliding_attention", "sliding_attention"],
        rope_parameters={"rope_type": "default", "rope_theta": 500.0},
    ),
}
IMPLEMENTATIONS = ("sdpa", "eager")
GENERATION = dict(max_new_tokens=10, min_new_tokens=10, do_sample=False, pad_token_id=0)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _randomize(model: torch.nn.Module, seed: int = 1) -> None:
    """Non-trivial values everywhere, the (1 + w) norms included, so a wrong or missing mapping shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            scale = 0.3 if "norm" in name else 0.05
            param.add_(torch.randn(param.shape, generator=generator) * scale)


def _max_diff(actual: torch.Tensor, expected: torch.Tensor, keep: torch.Tensor) -> float:
    return (actual - expected)[keep].abs().max().item()


def _labels(batch: dict) -> torch.Tensor:
    """The input ids where the previous position is a real token too: no loss term reads the logits of a
    padding position (whose attention row is all masked: a kernel's choice, not the model's)."""
    keep = batch["attention_mask"].bool()
    return batch["input_ids"].masked_fill(~(keep & keep.roll(1, dims=1)), -100)


def _reference(model_class, **overrides):
    torch.manual_seed(0)
    reference = model_class(transformers.Gemma2Config(**{**COMMON, **overrides}))
    _randomize(reference)
    return reference.eval()


@pytest.fixture(scope="module", params=list(VARIANTS))
def from_transformers(request, tmp_path_factory):
    """A transformers Gemma 2 checkpoint directory, and the zoo model ``zoo.load`` makes of it."""
    directory = tmp_path_factory.mktemp(request.param)
    reference = _reference(transformers.Gemma2ForCausalLM, **VARIANTS[request.param])
    reference.save_pretrained(directory)
    return request.param, reference, zoo.load(directory).eval()


@pytest.fixture(scope="module")
def from_zoo(tmp_path_factory):
    """A zoo Gemma 2 built from scratch, saved (default: the transformers layout), loaded by plain transformers."""
    directory = tmp_path_factory.mktemp("zoo-gemma2")
    torch.manual_seed(0)
    model = Gemma2ForCausalLM(Gemma2Config(**COMMON, attn_logit_softcapping=2.0, final_logit_softcapping=3.0))
    _randomize(model, seed=2)
    model.eval().save_pretrained(directory)
    reference = transformers.AutoModelForCausalLM.from_pretrained(directory).eval()
    return directory, model, reference


# -- transformers checkpoint -> zoo ------------------------------------------------------------------
def test_zoo_load_reads_the_transformers_checkpoint(from_transformers):
    kind, reference, model = from_transformers
    assert type(model) is Gemma2ForCausalLM
    config = model.config
    assert (config.model_type, config.reference_model_type) == ("zoo_gemma2", "gemma2")
    assert config.layer_types == reference.config.layer_types
    assert config.attention_scaling == 20**-0.5 and config.head_dim == 24
    assert config.attn_logit_softcapping == reference.config.attn_logit_softcapping
    assert config.final_logit_softcapping == reference.config.final_logit_softcapping
    assert config.rope_parameters == reference.config.rope_parameters
    assert (model.lm_head.weight is model.model.embed_tokens.weight) == config.tie_word_embeddings
    ours, theirs = model.model.layers[1], reference.model.layers[1]
    for zoo_name, reference_name in (
        ("attn_norm", "input_layernorm"),
        ("post_attn_norm", "post_attention_layernorm"),
        ("mlp_norm", "pre_feedforward_layernorm"),
        ("post_mlp_norm", "post_feedforward_layernorm"),
    ):
        assert torch.equal(getattr(ours, zoo_name).weight, getattr(theirs, reference_name).weight), zoo_name
    attention = theirs.self_attn
    qkv = torch.cat([attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight])
    assert torch.equal(ours.attn.qkv.weight, qkv)
    sliding = [block.attn.sliding_window for block in model.model.layers]
    assert sliding == [4 if t == "sliding_attention" else None for t in config.layer_types]


@pytest.mark.parametrize("attn_implementation", IMPLEMENTATIONS)
def test_an_unpadded_batch_matches(from_transformers, attn_implementation):
    """No attention mask at all: transformers' sdpa mask is then None (sdpa's own causal flag would apply),
    and a soft-capped layer, which runs the eager maths, must still be causal."""
    _, reference, model = from_transformers
    model.set_attn_implementation(attn_implementation)
    input_ids = torch.randint(3, VOCAB, (2, 12), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ours = model(input_ids, output_hidden_states=True)
        theirs = reference(input_ids, output_hidden_states=True)
    for actual, expected in zip((ours.logits, *ours.hidden_states), (theirs.logits, *theirs.hidden_states)):
        assert (actual - expected).abs().max().item() <= 1e-4
    model.set_attn_implementation("sdpa")


@pytest.mark.parametrize("left", [True, False], ids=["left-padded", "right-padded"])
@pytest.mark.parametrize("attn_implementation", IMPLEMENTATIONS)
def test_logits_every_hidden_state_and_loss_match(from_transformers, attn_implementation, left):
    _, reference, model = from_transformers
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
    with torch.no_grad():  # transformers' tuple order, the soft-capped loss first
        loss, logits = model(**batch, labels=labels, return_dict=False)[:2]
    assert torch.equal(loss, actual.loss) and torch.equal(logits, actual.logits)


def test_the_soft_caps_window_and_scaled_embeddings_matter(from_transformers):
    """Each Gemma difference changes the logits here: the checks above are not vacuous."""
    kind, _, model = from_transformers
    batch = padded_batch(0, left=True)
    keep = batch["attention_mask"].bool()
    with torch.no_grad():
        logits = model(**batch).logits
        changed = {"sliding_window": 64}
        if kind == "gemma2-softcapped":
            changed.update(attn_logit_softcapping=None, final_logit_softcapping=None)
            assert logits.abs().max().item() <= 3.0  # the final cap bounds them
        for field, value in changed.items():
            other = Gemma2ForCausalLM(Gemma2Config.from_dict({**model.config.to_dict(), field: value})).eval()
            other.load_state_dict(model.state_dict())
            assert _max_diff(other(**batch).logits, logits, keep) > 1e-3, field
        embeds = model.model.embed_tokens.weight[batch["input_ids"]]  # unscaled: as transformers
        unscaled = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits
        assert _max_diff(unscaled, logits, keep) > 1e-3
    assert model.fuses_loss(model.lm_head) == (model.config.final_logit_softcapping is None)


def test_sliding_layers_get_a_window_sized_cache(from_transformers):
    _, reference, model = from_transformers
    ids = padded_batch(0)["input_ids"][:1]
    with torch.no_grad():
        cache = model(ids, use_cache=True).cache
        expected = reference(ids, use_cache=True).cache
    assert [type(layer).__name__ for layer in cache.layers] == [
        type(layer).__name__ for layer in expected.layers
    ]
    assert cache.is_sliding == [t == "sliding_attention" for t in model.config.layer_types]
    lengths = [layer.keys.shape[-2] for layer in cache.layers]
    assert lengths == [3 if sliding else 12 for sliding in cache.is_sliding]  # window - 1 kept


@pytest.mark.parametrize("num_beams", [1, 3], ids=["greedy", "beam"])
def test_generation_past_the_window_matches_cached_uncached_padded_and_transformers(
    from_transformers, num_beams
):
    _, reference, model = from_transformers
    model.set_attn_implementation("eager")
    batch = padded_batch(0, left=True)
    kwargs = {**GENERATION, "num_beams": num_beams}
    expected = reference.generate(**batch, **kwargs)
    assert torch.equal(model.generate(**batch, **kwargs), expected)
    assert torch.equal(model.generate(**batch, **kwargs, use_cache=False), expected)
    for row in range(3):  # each row alone, unpadded, as in the left-padded batch
        alone = batch["input_ids"][row : row + 1, batch["attention_mask"][row].bool()]
        ours = model.generate(alone, **kwargs)
        assert torch.equal(ours, reference.generate(alone, **kwargs)), row
        assert torch.equal(ours[0, -10:], expected[row, -10:]), row


# -- zoo -> transformers -----------------------------------------------------------------------------
def test_zoo_save_loads_in_plain_transformers_with_the_same_logits(from_zoo):
    directory, model, reference = from_zoo
    config = json.loads((directory / "config.json").read_text())
    assert config["model_type"] == "gemma2" and config["architectures"] == ["Gemma2ForCausalLM"]
    assert config["query_pre_attn_scalar"] == 20 and config["layer_types"] == model.config.layer_types
    assert type(reference) is transformers.Gemma2ForCausalLM
    assert reference.config._attn_implementation == "eager"  # transformers' only Gemma 2 kernel
    for attn_implementation in IMPLEMENTATIONS:
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
    reloaded = transformers.Gemma2ForCausalLM.from_pretrained(tmp_path)
    original = reference.state_dict()
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, original[name]), name
    for field in ("layer_types", "sliding_window", "query_pre_attn_scalar", "final_logit_softcapping"):
        assert getattr(reloaded.config, field) == getattr(reference.config, field), field


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"layer_types": ["sliding_attention", "chunked_attention", "full_attention"]},
            "layer_types.*chunked",
        ),
        ({"use_bidirectional_attention": True}, "use_bidirectional_attention=True"),
    ],
    ids=["chunked-layer", "bidirectional"],
)
def test_a_checkpoint_the_zoo_does_not_implement_is_refused(change, message, tmp_path):
    data = {**transformers.Gemma2Config(**COMMON).to_dict(), **change}
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(zoo.ConfigError, match=message):
        Gemma2ForCausalLM.init_from_json(tmp_path / "config.json")


def test_zoo_config_values_gemma_does_not_have_are_refused(tmp_path):
    cases = {
        "attention_scaling": dict(attention_scaling=0.3),
        "layer_types has 2 entries": dict(layer_types=["full_attention"] * 2),
        "layer_types names": dict(layer_types=["global"] * 3),
        "sliding_window=None": dict(sliding_window=None),
        "norm_type='layernorm'": dict(norm_type="layernorm"),
        "final_logit_softcapping must be": dict(final_logit_softcapping=-1.0),
    }
    for message, change in cases.items():
        with pytest.raises(zoo.ConfigError, match=message):
            Gemma2Config(**{**COMMON, **change})
    inexpressible = Gemma2ForCausalLM(Gemma2Config(**COMMON, attention_out_bias=True))
    with pytest.raises(zoo.ConfigError, match="attention_out_bias"):
        inexpressible.save_reference(tmp_path / "out")


# -- heads -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("head", supported_heads("gemma2"))
def test_every_head_kind_builds_and_returns_a_loss(head):
    torch.manual_seed(0)
    model = head_class("gemma2", head)(Gemma2Config(**COMMON, num_labels=3))
    batch = padded_batch(0, left=True)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if head == "sequence-classification":
        batch["labels"] = torch.tensor([0, 2, 1])
    elif head == "embedding":
        batch.update(
            pair_input_ids=ids.flip(0), pair_attention_mask=mask.flip(0), labels=torch.tensor([0.2, 0.9, 0.5])
        )
    elif head.startswith("sequence-labeling"):
        batch["labels"] = torch.randint(0, 3, ids.shape).masked_fill(mask == 0, -100)
    else:  # causal-lm, seq2seq (a prefix LM)
        batch["labels"] = ids.masked_fill(mask == 0, -100)
    output = model(**batch)
    assert output.loss.ndim == 0 and torch.isfinite(output.loss) and output.loss > 0
    output.loss.backward()
    assert model.model.layers[0].post_mlp_norm.weight.grad is not None


@pytest.mark.parametrize(
    "reference_class",
    [transformers.Gemma2ForSequenceClassification, transformers.Gemma2ForTokenClassification],
)
@pytest.mark.parametrize("left", [True, False], ids=["left-padded", "right-padded"])
def test_classification_heads_match_transformers(reference_class, left, tmp_path):
    reference = _reference(reference_class, num_labels=3)
    reference.save_pretrained(tmp_path)
    model = zoo.load(tmp_path).eval()
    assert type(model).__name__ == reference_class.__name__
    assert type(model).__module__ == "zoo.models.gemma2.heads"
    batch = padded_batch(0, left=left)
    with torch.no_grad():
        expected, actual = reference(**batch).logits, model(**batch).logits
    if reference_class is transformers.Gemma2ForTokenClassification:
        expected, actual = expected[batch["attention_mask"].bool()], actual[batch["attention_mask"].bool()]
    assert (actual - expected).abs().max().item() <= 1e-4


def test_lora_defaults_wrap_the_fused_qkv():
    wrapped = apply_lora(Gemma2ForCausalLM(Gemma2Config(**COMMON)))
    lora = {
        name.removeprefix("base_model.model.")
        for name, module in wrapped.named_modules()
        if hasattr(module, "lora_A")
    }
    layers = range(COMMON["num_hidden_layers"])
    assert lora == {f"model.layers.{i}.attn.{p}" for i in layers for p in ("qkv", "out")}


def test_a_fresh_model_starts_with_identity_norms():
    model = Gemma2ForCausalLM(Gemma2Config(**COMMON))
    norms = [m for m in model.modules() if type(m).__name__ == "GemmaRMSNorm"]
    assert len(norms) == 4 * COMMON["num_hidden_layers"] + 1
    assert all(not norm.weight.any() for norm in norms)  # (1 + 0): scale one, as transformers initialises


def test_catalog_entry_and_card():
    entry = get_entry("gemma-2-2b")
    assert (entry.family, entry.hub_id, entry.license) == ("gemma2", "google/gemma-2-2b", "gemma")
    assert entry.card_path.is_file()
    assert "google/gemma-2-2b" in entry.card_path.read_text(encoding="utf-8")
