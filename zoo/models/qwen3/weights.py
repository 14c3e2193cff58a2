"""Qwen3: transformers / Hub names -> zoo names.

The Llama family's layout (q / k / v fused into ``attn.qkv``, split back by head counts on export) plus
the per-head query and key norms of each attention layer.
"""

from ...weights import WeightMap
from ..llama.weights import LLAMA_BASE, LLAMA_HEADS, qkv_split_sizes

QWEN3_BASE = {
    **LLAMA_BASE,
    "layers.{}.self_attn.q_norm.weight": "layers.{}.attn.q_norm.weight",
    "layers.{}.self_attn.k_norm.weight": "layers.{}.attn.k_norm.weight",
}

QWEN3_WEIGHT_MAP = WeightMap(QWEN3_BASE, LLAMA_HEADS, reference_prefix="model", split_sizes=qkv_split_sizes)
