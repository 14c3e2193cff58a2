"""The Llama family (Llama, Mistral, Qwen2) against transformers, same weights via the weight map."""

import json

import pytest
import torch
import transformers
from reference_models import padded_batch

import zoo

VOCAB = 211
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)
REFERENCES = {
    "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM, {}),
    "llama3-rope": (
        transformers.LlamaConfig,
        transformers.LlamaForCausalLM,
        dict(
            rope_parameters={
                "rope_type": "llama3",
                "rope_theta": 500000.0,
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 32,
            },
            tie_word_embeddings=True,
        ),
    ),
    "llama-bias": (
        transformers.LlamaConfig,
        transformers.LlamaForCausalLM,
        dict(attention_bias=True, mlp_bias=True),
    ),
    "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM, dict(sliding_window=8)),
    "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM, dict(tie_word_embeddings=True)),
}


def reference_and_zoo(kind, directory):
    config_class, model_class, extra = REFERENCES[kind]
    torch.manual_seed(0)
    reference = model_class(config_class(**COMMON, **extra))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in reference.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.02)
    reference.eval().save_pretrained(directory)
    return reference, zoo.LlamaForCausalLM.from_pretrained(directory)


@pytest.fixture(scope="module", params=list(REFERENCES))
def pair(request, tmp_path_factory):
    return request.param, *reference_and_zoo(request.param, tmp_path_factory.mktemp(request.param))


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_logits_and_hidden_states_match(pair, attn_implementation):
    kind, reference, model = pair
    reference.set_attn_implementation(attn_implementation)
    model.set_attn_implementation(attn_implementation)
    batch = padded_batch(0, left=True)
    with torch.no_grad():
        expected = reference(**batch, output_hidden_states=True)
        actual = model(**batch, output_hidden_states=True)
    keep = batch["attention_mask"].bool()
    assert (actual.logits - expected.logits)[keep].abs().max().item() <= 1e-4
    assert len(actual.hidden_states) == len(expected.hidden_states) == 4
    for a, e in zip(actual.hidden_states, expected.hidden_states):
        assert (a - e)[keep].abs().max().item() <= 1e-4
    labels = batch["input_ids"].masked_fill(~keep, -100)
    with torch.no_grad():
        assert (
            abs(model(**batch, labels=labels).loss.item() - reference(**batch, labels=labels).loss.item())
            <= 1e-5
        )


def test_greedy_generation_matches_including_left_padding(pair):
    kind, reference, model = pair
    batch = padded_batch(0, left=True)
    kwargs = {"max_new_tokens": 20, "do_sample": False, "pad_token_id": 0}
    expected = reference.generate(**batch, **kwargs)
    assert torch.equal(model.generate(**batch, **kwargs), expected)
    assert torch.equal(model.generate(**batch, **kwargs, use_cache=False), expected)
    single = batch["input_ids"][:1]
    assert torch.equal(model.generate(single, **kwargs), reference.generate(single, **kwargs))


def test_export_loads_in_plain_transformers(pair, tmp_path):
    kind, reference, model = pair
    model.save_reference(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == [type(reference).__name__]
    reloaded = type(reference).from_pretrained(tmp_path)
    original = reference.state_dict()
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, original[name]), name


def test_config_flags_follow_the_reference(pair):
    kind, reference, model = pair
    config = model.config
    assert config.reference_model_type == reference.config.model_type
    assert config.attention_bias == (kind in ("qwen2", "llama-bias"))
    assert config.attention_out_bias == (kind == "llama-bias")
    assert config.tie_word_embeddings == reference.config.tie_word_embeddings
    assert (model.lm_head.weight is model.model.embed_tokens.weight) == config.tie_word_embeddings
    assert config.sliding_window == (8 if kind == "mistral" else None)


def test_unsupported_qwen2_sliding_window_is_refused(tmp_path):
    config = transformers.Qwen2Config(**COMMON, use_sliding_window=True, sliding_window=8)
    config.save_pretrained(tmp_path)
    with pytest.raises(zoo.ConfigError, match="use_sliding_window"):
        zoo.LlamaForCausalLM.init_from_json(tmp_path / "config.json")


def test_random_init_builds_and_trains():
    config = zoo.LlamaConfig(**{**COMMON, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}})
    torch.manual_seed(0)
    model = zoo.LlamaForCausalLM(config)
    expected = 1.0 / (10000.0 ** (torch.arange(0, 16, 2).float() / 16))
    assert torch.allclose(model.model.rotary.inv_freq, expected)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = torch.arange(32).remainder(VOCAB - 3).add(3).repeat(4, 1)
    losses = []
    for _ in range(8):
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
