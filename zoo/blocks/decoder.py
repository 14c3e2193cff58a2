"""Pre-LN decoder block (GPT-2, nanoGPT, the Llama family): the norm precedes each sub-layer."""

from __future__ import annotations

import torch
from torch import nn

from ..hf_internals import Cache, GradientCheckpointingLayer
from ..layers import Attention, build_mlp, build_norm


class PreNormDecoderBlock(GradientCheckpointingLayer):
    """``h = x + attn(norm(x)); out = h + mlp(norm(h))`` with causal attention and a KV cache.

    The norm (LayerNorm / RMSNorm) and the MLP (plain / gated) come from the config, so GPT-2 and
    Llama differ here only by data.
    """

    def __init__(self, config, layer_idx: int):
        super().__init__()
        self.attn_norm = build_norm(config)
        self.attn = Attention(config, layer_idx, is_causal=True)
        self.mlp_norm = build_norm(config)
        self.mlp = build_mlp(config)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> torch.Tensor:
        attn_output, _ = self.attn(
            self.attn_norm(hidden_states),
            attention_mask,
            position_embeddings=position_embeddings,
            cache=cache,
            **kwargs,
        )
        hidden_states = hidden_states + self.dropout(attn_output)
        return hidden_states + self.dropout(self.mlp(self.mlp_norm(hidden_states)))
