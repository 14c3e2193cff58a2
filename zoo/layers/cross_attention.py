"""Cross-attention of an encoder-decoder: decoder states attend to the encoder's output.

Keys and values come from the encoder states through one fused ``kv`` projection. With a transformers
``EncoderDecoderCache`` they are projected once, stored in its ``cross_attention_cache`` and reused on
every later decoding step (``is_updated`` marks the layers already filled).
"""

from __future__ import annotations

import torch
from torch import nn

from ..hf_internals import EncoderDecoderCache
from .attention import attend


class CrossAttention(nn.Module):
    """Reads the same config fields as :class:`~zoo.layers.Attention` (heads, head_dim, biases, scaling)."""

    def __init__(self, config, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.is_causal = False  # read by transformers' sdpa / flash interfaces
        self.num_heads = config.num_attention_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.num_key_value_groups = self.num_heads // self.num_key_value_heads
        self.head_dim = config.head_dim
        self.scaling = config.attention_scaling
        self.q_size = self.num_heads * self.head_dim
        self.kv_size = self.num_key_value_heads * self.head_dim
        self.q = nn.Linear(config.hidden_size, self.q_size, bias=config.attention_bias)
        self.kv = nn.Linear(config.hidden_size, 2 * self.kv_size, bias=config.attention_bias)
        self.out = nn.Linear(self.q_size, config.hidden_size, bias=config.attention_out_bias)
        self.attn_dropout = nn.Dropout(config.attention_dropout)  # a module: see ``Attention``

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, seq_len, _ = hidden_states.shape
        query = self.q(hidden_states).view(batch, seq_len, -1, self.head_dim).transpose(1, 2)
        cache = cache if isinstance(cache, EncoderDecoderCache) else None
        if cache is not None and cache.is_updated.get(self.layer_idx):
            layer = cache.cross_attention_cache.layers[self.layer_idx]
            key, value = layer.keys, layer.values
        else:
            key, value = self.kv(encoder_hidden_states).split([self.kv_size, self.kv_size], dim=-1)
            source_len = encoder_hidden_states.shape[1]
            key = key.view(batch, source_len, -1, self.head_dim).transpose(1, 2)
            value = value.view(batch, source_len, -1, self.head_dim).transpose(1, 2)
            if cache is not None:
                key, value = cache.cross_attention_cache.update(key, value, self.layer_idx)
                cache.is_updated[self.layer_idx] = True

        return attend(self, query, key, value, attention_mask, **kwargs)
