"""Llama / Mistral / Qwen2: transformers / Hub names -> zoo names.

The three share one layout. q / k / v are fused into ``qkv`` (split back by head counts on export),
gate / up / down keep their own matrices.
"""

from ...weights import WeightMap

LLAMA_BASE = {
    "embed_tokens.weight": "embed_tokens.weight",
    (
        "layers.{}.self_attn.q_proj.weight",
        "layers.{}.self_attn.k_proj.weight",
        "layers.{}.self_attn.v_proj.weight",
    ): "layers.{}.attn.qkv.weight",
    (
        "layers.{}.self_attn.q_proj.bias",
        "layers.{}.self_attn.k_proj.bias",
        "layers.{}.self_attn.v_proj.bias",
    ): "layers.{}.attn.qkv.bias",
    "layers.{}.self_attn.o_proj.weight": "layers.{}.attn.out.weight",
    "layers.{}.self_attn.o_proj.bias": "layers.{}.attn.out.bias",
    "layers.{}.mlp.gate_proj.weight": "layers.{}.mlp.gate.weight",
    "layers.{}.mlp.up_proj.weight": "layers.{}.mlp.up.weight",
    "layers.{}.mlp.down_proj.weight": "layers.{}.mlp.down.weight",
    "layers.{}.mlp.gate_proj.bias": "layers.{}.mlp.gate.bias",
    "layers.{}.mlp.up_proj.bias": "layers.{}.mlp.up.bias",
    "layers.{}.mlp.down_proj.bias": "layers.{}.mlp.down.bias",
    "layers.{}.input_layernorm.weight": "layers.{}.attn_norm.weight",
    "layers.{}.post_attention_layernorm.weight": "layers.{}.mlp_norm.weight",
    "norm.weight": "norm.weight",
    # Rotary frequencies older checkpoints saved; they are computed from the config.
    "layers.{}.self_attn.rotary_emb.inv_freq": None,
}

LLAMA_HEADS = {
    "lm_head.weight": "lm_head.weight",
    "score.weight": "score.weight",  # *ForSequenceClassification, *ForTokenClassification
    "score.bias": "score.bias",  # *ForTokenClassification
}


def qkv_split_sizes(config, template: str) -> list[int]:
    kv_size = config.num_key_value_heads * config.head_dim
    return [config.num_attention_heads * config.head_dim, kv_size, kv_size]


LLAMA_WEIGHT_MAP = WeightMap(LLAMA_BASE, LLAMA_HEADS, reference_prefix="model", split_sizes=qkv_split_sizes)
