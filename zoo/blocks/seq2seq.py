"""Pre-LN encoder-decoder block (T5): ``x + sublayer(norm(x))`` for self-attention, cross-attention, MLP."""

from __future__ import annotations

import torch
from torch import nn

from ..hf_internals import Cache, EncoderDecoderCache, GradientCheckpointingLayer
from ..layers import Attention, CrossAttention, RelativePositionBias, build_mlp, build_norm


class PreNormSeq2SeqBlock(GradientCheckpointingLayer):
    """An encoder block (bidirectional self-attention, MLP) or a decoder block (causal self-attention,
    cross-attention to the encoder output, MLP).

    ``position_bias`` is an additive score term every block of a stack shares; with
    ``has_position_bias`` this block owns the :class:`RelativePositionBias` that computes it (T5's
    first block). Decoder self-attention caches in ``cache.self_attention_cache``, cross-attention
    in its ``cross_attention_cache``.
    """

    def __init__(self, config, layer_idx: int, is_decoder: bool, has_position_bias: bool = False):
        super().__init__()
        self.attn_norm = build_norm(config)
        self.attn = Attention(config, layer_idx, is_causal=is_decoder)
        self.position_bias = (
            RelativePositionBias(
                config.relative_attention_num_buckets,
                config.relative_attention_max_distance,
                config.num_attention_heads,
                bidirectional=not is_decoder,
            )
            if has_position_bias
            else None
        )
        self.cross_attn_norm = build_norm(config) if is_decoder else None
        self.cross_attn = CrossAttention(config, layer_idx) if is_decoder else None
        self.mlp_norm = build_norm(config)
        self.mlp = build_mlp(config)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_bias: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> torch.Tensor:
        self_cache = cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache
        attn_output, _ = self.attn(
            self.attn_norm(hidden_states),
            attention_mask,
            cache=self_cache,
            position_bias=position_bias,
            **kwargs,
        )
        hidden_states = hidden_states + self.dropout(attn_output)
        if self.cross_attn is not None and encoder_hidden_states is not None:
            cross_output, _ = self.cross_attn(
                self.cross_attn_norm(hidden_states),
                encoder_hidden_states,
                encoder_attention_mask,
                cache=cache,
                **kwargs,
            )
            hidden_states = hidden_states + self.dropout(cross_output)
        return hidden_states + self.dropout(self.mlp(self.mlp_norm(hidden_states)))
