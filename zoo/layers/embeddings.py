"""Position ids for learned absolute position embeddings."""

from __future__ import annotations

import torch


def positions_after_cache(input_shape: torch.Size, past_length: int, device: torch.device) -> torch.Tensor:
    """Position ids ``past_length, past_length + 1, ...`` for a (batch, seq) input, shape (1, seq)."""
    return torch.arange(past_length, past_length + input_shape[1], device=device).unsqueeze(0)


def positions_from_padding(input_ids: torch.Tensor, padding_idx: int, past_length: int = 0) -> torch.Tensor:
    """RoBERTa's position ids: real tokens count from ``padding_idx + 1``, pad tokens stay at ``padding_idx``."""
    is_token = input_ids.ne(padding_idx).int()
    return (torch.cumsum(is_token, dim=1) + past_length) * is_token + padding_idx
