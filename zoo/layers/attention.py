"""Self-attention shared by every family.

One module covers multi-head, grouped-query and multi-query attention: a fused ``qkv`` projection
whose output holds ``num_attention_heads`` query heads followed by ``num_key_value_heads`` key and
value heads, optional rotary position embeddings, a transformers ``Cache`` for incremental decoding,
and the attention kernel chosen through transformers' attention interface (``sdpa`` by default,
``eager`` as the reference fallback, or any registered backend).
"""

from __future__ import annotations

import torch
from torch import nn

from ..hf_internals import ALL_ATTENTION_FUNCTIONS, Cache
from .rotary import apply_rotary


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    position_bias: torch.Tensor | None = None,
    softcap: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain matmul-softmax-matmul attention; ``query`` is (batch, heads, q_len, head_dim).

    ``position_bias`` (broadcastable to the scores, e.g. T5's relative bias) is added before the mask;
    ``softcap`` (Gemma 2) caps the scores to ``softcap * tanh(scores / softcap)`` before both.
    """
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if position_bias is not None:
        scores = scores + position_bias
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask[..., : key.shape[-2]]
    weights = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return output, weights


def attend(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The configured attention kernel, then ``module.out``; ``query`` is (batch, heads, q_len, head_dim)."""
    implementation = module.config._attn_implementation
    if implementation == "sdpa" and kwargs.get("softcap") is not None:
        # torch's sdpa cannot soft-cap scores (transformers' sdpa raises on ``softcap``): the eager maths.
        # An sdpa mask may be None where sdpa's own causal flag would apply (no padding): eager needs it
        # spelled out, the queries being the last q_len of the k_len positions.
        implementation = "eager"
        if attention_mask is None and getattr(module, "is_causal", False):
            q_len, k_len = query.shape[-2], key.shape[-2]
            attention_mask = torch.ones(q_len, k_len, dtype=torch.bool, device=query.device).tril(
                k_len - q_len
            )
    attention = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
    output, weights = attention(
        module,
        query,
        key,
        value,
        attention_mask,
        dropout=module.attn_dropout.p if module.training else 0.0,
        scaling=module.scaling,
        **kwargs,
    )
    batch, _, seq_len, _ = query.shape
    return module.out(output.reshape(batch, seq_len, -1)), weights


class Attention(nn.Module):
    """Self-attention over ``hidden_states`` of shape (batch, seq, hidden).

    Reads from the config (a :class:`~zoo.ZooConfig`): ``hidden_size``, ``num_attention_heads``,
    ``num_key_value_heads``, ``head_dim``, ``attention_bias``, ``attention_out_bias``,
    ``attention_scaling``, ``attention_dropout`` and ``_attn_implementation``.
    """

    def __init__(self, config, layer_idx: int, is_causal: bool):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.is_causal = is_causal  # read by transformers' sdpa / flash interfaces
        self.num_heads = config.num_attention_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.num_key_value_groups = self.num_heads // self.num_key_value_heads
        self.head_dim = config.head_dim
        self.scaling = config.attention_scaling
        self.q_size = self.num_heads * self.head_dim
        self.kv_size = self.num_key_value_heads * self.head_dim
        self.qkv = nn.Linear(config.hidden_size, self.q_size + 2 * self.kv_size, bias=config.attention_bias)
        self.out = nn.Linear(self.q_size, config.hidden_size, bias=config.attention_out_bias)
        # A module, not a float read from the config, so tools that switch dropout off by module
        # (TRL's disable_dropout, ``module.p = 0``) reach attention probabilities too.
        self.attn_dropout = nn.Dropout(config.attention_dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, seq_len, _ = hidden_states.shape
        query, key, value = self.qkv(hidden_states).split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        query = query.view(batch, seq_len, -1, self.head_dim).transpose(1, 2)
        key = key.view(batch, seq_len, -1, self.head_dim).transpose(1, 2)
        value = value.view(batch, seq_len, -1, self.head_dim).transpose(1, 2)

        query, key = self.normalize_qk(query, key)
        if position_embeddings is not None:
            query, key = apply_rotary(query, key, *position_embeddings)
        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx)

        return attend(self, query, key, value, attention_mask, **kwargs)

    def normalize_qk(self, query: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hook between the projection and rotary positions, (batch, heads, seq, head_dim) each; unchanged
        here (Qwen3 normalises each head)."""
        return query, key
