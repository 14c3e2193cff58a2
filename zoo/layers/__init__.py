"""Layers every family is built from."""

from .attention import Attention, eager_attention_forward
from .cross_attention import CrossAttention
from .embeddings import positions_after_cache, positions_from_padding
from .mlp import MLP, GatedMLP, build_mlp
from .norms import RMSNorm, build_norm
from .relative_position import RelativePositionBias, relative_position_bucket
from .rotary import RotaryEmbedding, apply_rotary, rotate_half

__all__ = [
    "MLP",
    "Attention",
    "CrossAttention",
    "GatedMLP",
    "RMSNorm",
    "RelativePositionBias",
    "RotaryEmbedding",
    "apply_rotary",
    "build_mlp",
    "build_norm",
    "eager_attention_forward",
    "positions_after_cache",
    "positions_from_padding",
    "relative_position_bucket",
    "rotate_half",
]
