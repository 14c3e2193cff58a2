"""Gemma 3: transformers / Hub names -> zoo names.

Gemma 2's layout plus the per-head query and key norms of each attention layer.
"""

from ...weights import WeightMap
from ..gemma2.weights import GEMMA2_BASE
from ..llama.weights import LLAMA_HEADS, qkv_split_sizes

GEMMA3_BASE = {
    **GEMMA2_BASE,
    "layers.{}.self_attn.q_norm.weight": "layers.{}.attn.q_norm.weight",
    "layers.{}.self_attn.k_norm.weight": "layers.{}.attn.k_norm.weight",
}

GEMMA3_WEIGHT_MAP = WeightMap(GEMMA3_BASE, LLAMA_HEADS, reference_prefix="model", split_sizes=qkv_split_sizes)
