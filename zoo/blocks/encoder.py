"""Post-LN encoder block (BERT, RoBERTa): the norm follows each residual addition."""

from __future__ import annotations

import torch
from torch import nn

from ..hf_internals import GradientCheckpointingLayer
from ..layers import Attention, build_mlp, build_norm


class PostNormEncoderBlock(GradientCheckpointingLayer):
    """``h = norm(x + attn(x)); out = norm(h + mlp(h))`` with bidirectional attention."""

    def __init__(self, config, layer_idx: int):
        super().__init__()
        self.attn = Attention(config, layer_idx, is_causal=False)
        self.attn_norm = build_norm(config)
        self.mlp = build_mlp(config)
        self.mlp_norm = build_norm(config)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> torch.Tensor:
        attn_output, _ = self.attn(hidden_states, attention_mask, **kwargs)
        hidden_states = self.attn_norm(hidden_states + self.dropout(attn_output))
        return self.mlp_norm(hidden_states + self.dropout(self.mlp(hidden_states)))
