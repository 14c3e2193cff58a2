"""Gemma 2: transformers / Hub names -> zoo names.

The Llama family's layout (q / k / v fused into ``attn.qkv``, split back by head counts on export) with
Gemma's four norms per layer: before and after the attention, before and after the feed-forward.
"""

from ...weights import WeightMap
from ..llama.weights import LLAMA_BASE, LLAMA_HEADS, qkv_split_sizes

GEMMA2_BASE = {
    **{ref: zoo for ref, zoo in LLAMA_BASE.items() if ref != "layers.{}.post_attention_layernorm.weight"},
    "layers.{}.post_attention_layernorm.weight": "layers.{}.post_attn_norm.weight",
    "layers.{}.pre_feedforward_layernorm.weight": "layers.{}.mlp_norm.weight",
    "layers.{}.post_feedforward_layernorm.weight": "layers.{}.post_mlp_norm.weight",
}

GEMMA2_WEIGHT_MAP = WeightMap(GEMMA2_BASE, LLAMA_HEADS, reference_prefix="model", split_sizes=qkv_split_sizes)
