"""A linear-chain conditional random field: negative log-likelihood (forward algorithm) and Viterbi.

Masks may have holes (sub-word positions labelled -100 in the middle of a word sequence): masked
positions are removed from the chain, so a tag path runs over the unmasked positions of a row in
order, and transitions connect neighbouring *unmasked* positions.
"""

from __future__ import annotations

import torch
from torch import nn


def pack(mask: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Move each row's unmasked positions to the front, in order; returns (lengths, packed tensors).

    ``mask`` is (batch, seq); every tensor is (batch, seq, ...) and comes back as (batch, max length, ...).
    """
    mask = mask.bool()
    lengths = mask.sum(dim=1)
    order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
    width = max(int(lengths.max()) if lengths.numel() else 0, 1)
    order = order[:, :width]
    packed = []
    for tensor in tensors:
        index = order.view(*order.shape, *([1] * (tensor.dim() - 2))).expand(-1, -1, *tensor.shape[2:])
        packed.append(tensor.gather(1, index))
    return lengths, packed


class CRF(nn.Module):
    """Tag transition scores: ``transitions[i, j]`` scores tag ``i`` followed by tag ``j``."""

    def __init__(self, num_tags: int):
        super().__init__()
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for param in self.parameters():
            nn.init.uniform_(param, -0.1, 0.1)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    # -- scores of packed chains (rows left-aligned, ``lengths`` valid positions each) -------------
    def _log_partition(self, emissions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        alpha = self.start_transitions + emissions[:, 0]
        for t in range(1, emissions.shape[1]):
            step = torch.logsumexp(alpha[:, :, None] + self.transitions + emissions[:, t, None, :], dim=1)
            alpha = torch.where((t < lengths)[:, None], step, alpha)
        return torch.logsumexp(alpha + self.end_transitions, dim=1)

    def _path_score(self, emissions: torch.Tensor, tags: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(emissions.shape[1], device=emissions.device)
        valid = steps[None, :] < lengths[:, None]
        emitted = emissions.gather(2, tags[..., None]).squeeze(-1)
        score = self.start_transitions[tags[:, 0]] + (emitted * valid).sum(dim=1)
        moved = self.transitions[tags[:, :-1], tags[:, 1:]] * valid[:, 1:]
        last = tags.gather(1, (lengths - 1).clamp(min=0)[:, None]).squeeze(1)
        return score + moved.sum(dim=1) + self.end_transitions[last]

    def log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-row log p(tags | emissions) over the unmasked positions; 0 for a row with none."""
        lengths, (emissions, tags) = pack(mask, emissions.float(), tags)
        ll = self._path_score(emissions, tags, lengths) - self._log_partition(emissions, lengths)
        return torch.where(lengths > 0, ll, torch.zeros_like(ll))

    def neg_log_likelihood(
        self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean over the batch of -log p(tags | emissions): the CRF training loss."""
        if mask is None:
            mask = torch.ones(tags.shape, dtype=torch.bool, device=tags.device)
        return -self.log_likelihood(emissions, tags, mask).mean()

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-row log of the sum over all tag paths of exp(score) (0 for an empty row)."""
        lengths, (emissions,) = pack(mask, emissions.float())
        z = self._log_partition(emissions, lengths)
        return torch.where(lengths > 0, z, torch.zeros_like(z))

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor | None = None) -> list[list[int]]:
        """Viterbi: the best tag path of each row, one tag per unmasked position."""
        if mask is None:
            mask = torch.ones(emissions.shape[:2], dtype=torch.bool, device=emissions.device)
        lengths, (emissions,) = pack(mask, emissions.float())
        score = self.start_transitions + emissions[:, 0]
        backpointers = []
        for t in range(1, emissions.shape[1]):
            best, previous = (score[:, :, None] + self.transitions).max(dim=1)
            score = torch.where((t < lengths)[:, None], best + emissions[:, t], score)
            backpointers.append(previous)
        last = (score + self.end_transitions).argmax(dim=1).tolist()
        paths = []
        for row, length in enumerate(lengths.tolist()):
            if length == 0:
                paths.append([])
                continue
            path = [last[row]]
            for t in range(length - 1, 0, -1):
                path.append(int(backpointers[t - 1][row, path[-1]]))
            paths.append(path[::-1])
        return paths
