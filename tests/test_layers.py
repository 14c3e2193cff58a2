"""Shared layers against transformers' own implementations (GQA, rotary, RMSNorm, masks)."""

import pytest
import torch
from transformers import LlamaConfig
from transformers.masking_utils import create_causal_mask
from transformers.models.llama import modeling_llama

import zoo
from zoo.layers import Attention, RMSNorm, RotaryEmbedding, apply_rotary


def _llama_config(**rope):
    config = LlamaConfig(
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        num_hidden_layers=1,
        vocab_size=50,
        max_position_embeddings=256,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, **rope},
    )
    config.attention_dropout = 0.0
    return config


@pytest.mark.parametrize(
    "rope",
    [
        {},
        {"rope_type": "linear", "factor": 2.0},
        {"rope_type": "dynamic", "factor": 2.0},
        {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        },
    ],
)
def test_rotary_matches_llama(rope):
    config = _llama_config(**rope)
    ours, theirs = RotaryEmbedding(config), modeling_llama.LlamaRotaryEmbedding(config)
    x = torch.randn(2, 9, 64)
    positions = torch.arange(9).repeat(2, 1) + torch.tensor([[0], [40]])
    if rope.get("rope_type") == "dynamic":  # beyond the trained length: frequencies are rescaled
        positions = positions + 250
    cos, sin = ours(x, positions)
    ref_cos, ref_sin = theirs(x, positions)
    assert (cos - ref_cos).abs().max().item() <= 1e-6 and (sin - ref_sin).abs().max().item() <= 1e-6
    q, k = torch.randn(2, 4, 9, 16), torch.randn(2, 2, 9, 16)
    ours_q, ours_k = apply_rotary(q, k, cos, sin)
    ref_q, ref_k = modeling_llama.apply_rotary_pos_emb(q, k, ref_cos, ref_sin)
    assert torch.allclose(ours_q, ref_q, atol=1e-6) and torch.allclose(ours_k, ref_k, atol=1e-6)


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_gqa_attention_matches_llama_attention(implementation):
    config = _llama_config()
    config._attn_implementation = implementation
    config.attention_bias = False
    torch.manual_seed(0)
    theirs = modeling_llama.LlamaAttention(config, layer_idx=0).eval()
    ours_config = zoo.LlamaConfig.from_reference(config.to_dict())  # the layer reads the zoo's fields
    ours_config._attn_implementation = implementation
    ours = Attention(ours_config, layer_idx=0, is_causal=True).eval()
    with torch.no_grad():  # fuse their q / k / v into our qkv (the Llama weight map will do exactly this)
        ours.qkv.weight.copy_(torch.cat([theirs.q_proj.weight, theirs.k_proj.weight, theirs.v_proj.weight]))
        ours.out.weight.copy_(theirs.o_proj.weight)
    hidden = torch.randn(2, 7, 64)
    attention_mask = torch.ones(2, 7, dtype=torch.long)
    attention_mask[1, :2] = 0
    positions = torch.arange(7).repeat(2, 1)
    rotary = RotaryEmbedding(config)(hidden, positions)
    mask = create_causal_mask(
        config=config,
        inputs_embeds=hidden,
        attention_mask=attention_mask,
        cache=None,
        position_ids=positions,
    )
    with torch.no_grad():
        expected, _ = theirs(hidden, position_embeddings=rotary, attention_mask=mask)
        actual, _ = ours(hidden, mask, position_embeddings=rotary)
    keep = attention_mask.bool()
    assert (actual[keep] - expected[keep]).abs().max().item() <= 1e-6


def test_rmsnorm_matches_llama_in_bf16():
    ours, theirs = RMSNorm(64, eps=1e-6), modeling_llama.LlamaRMSNorm(64, eps=1e-6)
    with torch.no_grad():
        ours.weight.normal_()
        theirs.weight.copy_(ours.weight)
    x = torch.randn(3, 5, 64, dtype=torch.bfloat16)
    assert torch.equal(ours.to(torch.bfloat16)(x), theirs.to(torch.bfloat16)(x))
