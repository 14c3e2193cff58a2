"""The Qwen3 family against transformers' Qwen3, same weights through the weight map, both directions."""

import json

import pytest
import torch
import transformers
from reference_models import VOCAB, padded_batch

import zoo
from auto_loader import get_entry
from trainers.lora import apply_lora
from zoo.family import head_class, supported_heads
from zoo.models.qwen3 import Qwen3Config, Qwen3ForCausalLM

# head_dim 24 != hidden_size / num_attention_heads (16): Qwen3's head_dim is its own field.
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=24,
    max_position_embeddings=256,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)
VARIANTS = {
    "qwen3": {},
    "qwen3-tied-bias": dict(
        tie_word_embeddings=True,
        attention_bias=True,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
    ),
}
IMPLEMENTATIONS = ("sdpa", "eager")


def _randomize(model: torch.nn.Module, seed: int = 1) -> None:
    """Non-trivial values everywhere, the q / k norms included, so a wrong or missing mapping shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            scale = 0.3 if name.endswith(("q_norm.weight", "k_norm.weight")) else 0.02
            param.add_(torch.randn(param.shape, generator=generator) * scale)


def _max_diff(actual: torch.Tensor, expected: torch.Tensor, keep: torch.Tensor) -> float:
    return (actual - expected)[keep].abs().max().item()


@pytest.fixture(scope="module", params=list(VARIANTS))
def from_transformers(request, tmp_path_factory):
    """A transformers Qwen3 checkpoint directory, and the zoo model ``zoo.load`` makes of it."""
    directory = tmp_path_factory.mktemp(request.param)
    torch.manual_seed(0)
    reference = transformers.Qwen3ForCausalLM(transformers.Qwen3Config(**COMMON, **VARIANTS[request.param]))
    _randomize(reference)
    reference.eval().save_pretrained(directory)
    model = zoo.load(directory).eval()
    return request.param, reference, model


@pytest.fixture(scope="module")
def from_zoo(tmp_path_factory):
    """A zoo Qwen3 built from scratch, saved (default: the transformers layout), loaded by plain transformers."""
    directory = tmp_path_factory.mktemp("zoo-qwen3")
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(Qwen3Config(**COMMON, tie_word_embeddings=True))
    _randomize(model, seed=2)
    model.eval().save_pretrained(directory)
    reference = transformers.AutoModelForCausalLM.from_pretrained(directory).eval()
    return directory, model, reference


def test_zoo_load_reads_the_transformers_checkpoint(from_transformers):
    kind, reference, model = from_transformers
    assert type(model) is Qwen3ForCausalLM
    config = model.config
    assert (config.model_type, config.reference_model_type) == ("zoo_qwen3", "qwen3")
    assert config.head_dim == 24 != config.hidden_size // config.num_attention_heads
    assert config.attention_bias == config.attention_out_bias == (kind == "qwen3-tied-bias")
    assert config.rope_parameters == reference.config.rope_parameters
    assert config.tie_word_embeddings == reference.config.tie_word_embeddings
    assert (model.lm_head.weight is model.model.embed_tokens.weight) == config.tie_word_embeddings
    attention = reference.model.layers[1].self_attn
    zoo_attention = model.model.layers[1].attn
    assert torch.equal(zoo_attention.q_norm.weight, attention.q_norm.weight)
    assert torch.equal(zoo_attention.k_norm.weight, attention.k_norm.weight)
    assert zoo_attention.q_norm.weight.shape == (24,)
    qkv = torch.cat([attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight])
    assert torch.equal(zoo_attention.qkv.weight, qkv)


@pytest.mark.parametrize("left", [True, False], ids=["left-padded", "right-padded"])
@pytest.mark.parametrize("attn_implementation", IMPLEMENTATIONS)
def test_logits_hidden_states_and_loss_match(from_transformers, attn_implementation, left):
    _, reference, model = from_transformers
    reference.set_attn_implementation(attn_implementation)
    model.set_attn_implementation(attn_implementation)
    batch = padded_batch(0, left=left)
    keep = batch["attention_mask"].bool()
    labels = batch["input_ids"].masked_fill(~keep, -100)
    with torch.no_grad():
        expected = reference(**batch, labels=labels, output_hidden_states=True)
        actual = model(**batch, labels=labels, output_hidden_states=True)
    assert _max_diff(actual.logits, expected.logits, keep) <= 1e-4
    assert len(actual.hidden_states) == len(expected.hidden_states) == COMMON["num_hidden_layers"] + 1
    for a, e in zip(actual.hidden_states, expected.hidden_states):
        assert _max_diff(a, e, keep) <= 1e-4
    assert abs(actual.loss.item() - expected.loss.item()) <= 1e-5


def test_greedy_generation_matches_cached_uncached_and_left_padded(from_transformers):
    _, reference, model = from_transformers
    batch = padded_batch(0, left=True)
    kwargs = {"max_new_tokens": 8, "do_sample": False, "pad_token_id": 0}
    expected = reference.generate(**batch, **kwargs)
    assert torch.equal(model.generate(**batch, **kwargs), expected)
    assert torch.equal(model.generate(**batch, **kwargs, use_cache=False), expected)
    single = batch["input_ids"][:1]
    assert torch.equal(model.generate(single, **kwargs), reference.generate(single, **kwargs))


def test_zoo_save_loads_in_plain_transformers_with_the_same_logits(from_zoo):
    directory, model, reference = from_zoo
    config = json.loads((directory / "config.json").read_text())
    assert config["model_type"] == "qwen3" and config["architectures"] == ["Qwen3ForCausalLM"]
    assert config["head_dim"] == 24 and config["use_sliding_window"] is False
    assert type(reference) is transformers.Qwen3ForCausalLM
    for attn_implementation in IMPLEMENTATIONS:
        reference.set_attn_implementation(attn_implementation)
        model.set_attn_implementation(attn_implementation)
        for left in (True, False):
            batch = padded_batch(0, left=left, seed=3)
            with torch.no_grad():
                diff = _max_diff(
                    model(**batch).logits, reference(**batch).logits, batch["attention_mask"].bool()
                )
            assert diff <= 1e-4, (attn_implementation, left, diff)


def test_export_round_trips_the_transformers_weights(from_transformers, tmp_path):
    _, reference, model = from_transformers
    model.save_reference(tmp_path)
    reloaded = transformers.Qwen3ForCausalLM.from_pretrained(tmp_path)
    original = reference.state_dict()
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, original[name]), name


def test_unsupported_sliding_window_is_refused(tmp_path):
    config = transformers.Qwen3Config(
        **COMMON, use_sliding_window=True, sliding_window=8, max_window_layers=1
    )
    config.save_pretrained(tmp_path)
    with pytest.raises(zoo.ConfigError, match="use_sliding_window"):
        Qwen3ForCausalLM.init_from_json(tmp_path / "config.json")
    with pytest.raises(zoo.ConfigError, match="sliding_window"):
        Qwen3Config(**COMMON, sliding_window=8)
    inexpressible = Qwen3ForCausalLM(Qwen3Config(**COMMON, attention_out_bias=True))
    with pytest.raises(zoo.ConfigError, match="attention_out_bias"):
        inexpressible.save_reference(tmp_path / "out")


@pytest.mark.parametrize("head", supported_heads("qwen3"))
def test_every_head_kind_builds_and_returns_a_loss(head):
    torch.manual_seed(0)
    model = head_class("qwen3", head)(Qwen3Config(**COMMON, num_labels=3))
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
    assert model.model.layers[0].attn.q_norm.weight.grad is not None


@pytest.mark.parametrize(
    "reference_class", [transformers.Qwen3ForSequenceClassification, transformers.Qwen3ForTokenClassification]
)
@pytest.mark.parametrize("left", [True, False], ids=["left-padded", "right-padded"])
def test_classification_heads_match_transformers(reference_class, left, tmp_path):
    torch.manual_seed(0)
    reference = reference_class(transformers.Qwen3Config(**COMMON, num_labels=3))
    _randomize(reference)
    reference.eval().save_pretrained(tmp_path)
    model = zoo.load(tmp_path).eval()
    assert (
        type(model).__name__ == reference_class.__name__
        and type(model).__module__ == "zoo.models.qwen3.heads"
    )
    batch = padded_batch(0, left=left)
    with torch.no_grad():
        expected, actual = reference(**batch).logits, model(**batch).logits
    if reference_class is transformers.Qwen3ForTokenClassification:
        expected, actual = expected[batch["attention_mask"].bool()], actual[batch["attention_mask"].bool()]
    assert (actual - expected).abs().max().item() <= 1e-4


def test_lora_defaults_wrap_the_fused_qkv():
    model = Qwen3ForCausalLM(Qwen3Config(**COMMON))
    wrapped = apply_lora(model)
    lora = {
        name.removeprefix("base_model.model.")
        for name, module in wrapped.named_modules()
        if hasattr(module, "lora_A") and name.endswith(("qkv", "out"))
    }
    layers = range(COMMON["num_hidden_layers"])
    assert {f"model.layers.{i}.attn.qkv" for i in layers} <= lora
    assert not any("q_norm" in name or "k_norm" in name for name in lora)


def test_catalog_entry_and_card():
    entry = get_entry("qwen3-0.6b")
    assert (entry.family, entry.hub_id, entry.license) == ("qwen3", "Qwen/Qwen3-0.6B", "apache-2.0")
    assert entry.card_path.is_file()
    assert "Qwen/Qwen3-0.6B" in entry.card_path.read_text(encoding="utf-8")
