"""Rotary position embeddings (RoPE), with every scaling type transformers knows.

The inverse frequencies come from ``transformers.modeling_rope_utils.ROPE_INIT_FUNCTIONS`` (linear,
dynamic, yarn, longrope, llama3, ...), so a checkpoint's ``rope_parameters`` mean here exactly what
they mean in transformers. For the static types the cos / sin tables are computed once and indexed
by position, instead of being recomputed at every decoding step; the dynamic types (which change
their frequencies with the sequence length) are recomputed per call as transformers does.
"""

from __future__ import annotations

import torch
from torch import nn

from ..hf_internals import ROPE_INIT_FUNCTIONS, dynamic_rope_update

_DYNAMIC_TYPES = ("dynamic", "longrope")
_TABLE_GRANULARITY = 256  # tables grow in steps of this many positions


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def apply_rotary(
    query: torch.Tensor, key: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate (batch, heads, seq, head_dim) query and key by (batch, seq, head_dim) cos / sin tables."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return query * cos + rotate_half(query) * sin, key * cos + rotate_half(key) * sin


class RotaryEmbedding(nn.Module):
    """Computes the cos / sin tables for the given position ids (one module per model, not per layer).

    Reads ``rope_parameters`` (``rope_theta`` required), ``head_dim`` and ``max_position_embeddings``, and
    whatever transformers' init function of the rope type reads.
    """

    def __init__(self, config, device: torch.device | None = None):
        super().__init__()
        self.config = config
        self.rope_type = config.rope_parameters.get("rope_type", "default")
        self.max_seq_len_cached = self.original_max_seq_len = config.max_position_embeddings
        self.reset_buffers(device)

    @staticmethod
    def compute_default_rope_parameters(config, device=None, **kwargs) -> tuple[torch.Tensor, float]:
        """The plain RoPE frequencies (transformers' weight init calls this by name)."""
        return _default_inv_freq(config, device)

    def reset_buffers(self, device: torch.device | None = None) -> None:
        """(Re)compute ``inv_freq``; called after a meta-device build, where buffers hold no data."""
        if self.rope_type == "default":
            inv_freq, scale = _default_inv_freq(self.config, device)
        else:
            inv_freq, scale = ROPE_INIT_FUNCTIONS[self.rope_type](self.config, device)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.register_buffer("original_inv_freq", inv_freq.clone(), persistent=False)
        self.attention_scaling = scale
        self._tables: tuple[torch.Tensor, torch.Tensor] | None = None

    @torch.no_grad()
    def forward(
        self, hidden_states: torch.Tensor, position_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.rope_type in _DYNAMIC_TYPES:
            return self._computed(hidden_states, position_ids)
        if torch.compiler.is_compiling():
            # The table's length depends on the largest position (data-dependent: a graph break under
            # torch.compile, an error under torch.export); computing from the positions gives the
            # same float32 values, which the compiler fuses into the attention's prologue.
            cos, sin = self._cos_sin(position_ids.float())
            return cos.to(hidden_states.dtype), sin.to(hidden_states.dtype)
        cos, sin = self._tables_for(int(position_ids.max()) + 1, hidden_states.device)
        dtype = hidden_states.dtype
        return cos[position_ids].to(dtype), sin[position_ids].to(dtype)

    def _tables_for(self, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self._tables is None or self._tables[0].shape[0] < length or self._tables[0].device != device:
            length = -(-length // _TABLE_GRANULARITY) * _TABLE_GRANULARITY
            positions = torch.arange(length, device=device, dtype=torch.float32)
            self._tables = self._cos_sin(positions)
        return self._tables

    def _cos_sin(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(device_type=positions.device.type, enabled=False):
            freqs = positions[..., None] * self.inv_freq.to(device=positions.device, dtype=torch.float32)
            angles = torch.cat((freqs, freqs), dim=-1)
            return angles.cos() * self.attention_scaling, angles.sin() * self.attention_scaling

    @dynamic_rope_update
    def _computed(
        self, hidden_states: torch.Tensor, position_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = self._cos_sin(position_ids.float())
        return cos.to(hidden_states.dtype), sin.to(hidden_states.dtype)


def _default_inv_freq(config, device) -> tuple[torch.Tensor, float]:
    rope = config.rope_parameters
    dim = int(config.head_dim * rope.get("partial_rotary_factor", 1.0))
    exponent = torch.arange(0, dim, 2, dtype=torch.int64, device=device).float() / dim
    return 1.0 / (rope["rope_theta"] ** exponent), 1.0
