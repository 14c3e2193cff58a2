"""T5's relative position bias: a learned scalar per (head, bucketed key - query distance), added to scores."""

from __future__ import annotations

import math

import torch
from torch import nn


def relative_position_bucket(
    relative_position: torch.Tensor, bidirectional: bool, num_buckets: int, max_distance: int
) -> torch.Tensor:
    """Mesh TensorFlow's bucketing: exact buckets for short distances, log-spaced ones up to ``max_distance``.

    ``relative_position`` is key position - query position; a causal (``bidirectional=False``) bias gives
    every future position the bucket of distance 0, which the causal mask hides anyway.
    """
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    log_ratio = torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact)
    large = max_exact + (log_ratio * (num_buckets - max_exact)).long()
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, distance, large)


class RelativePositionBias(nn.Module):
    """Bias of shape (1, heads, q_len, k_len) for queries after ``past_length`` cached positions.

    One instance per stack (T5 keeps it in the first block); every block adds the same bias.
    """

    def __init__(self, num_buckets: int, max_distance: int, num_heads: int, bidirectional: bool):
        super().__init__()
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = bidirectional
        self.embedding = nn.Embedding(num_buckets, num_heads)

    def forward(self, query_length: int, key_length: int, past_length: int = 0) -> torch.Tensor:
        device = self.embedding.weight.device
        query_positions = torch.arange(query_length, device=device)[:, None] + past_length
        key_positions = torch.arange(key_length, device=device)[None, :]
        buckets = relative_position_bucket(
            key_positions - query_positions, self.bidirectional, self.num_buckets, self.max_distance
        )
        return self.embedding(buckets).permute(2, 0, 1).unsqueeze(0)
