"""Feed-forward layers: the classic two-matrix MLP and the gated (SwiGLU / GeGLU) variant."""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN

# "gelu_new" (GPT-2) is the tanh approximation of GELU; transformers evaluates it as a chain of
# eight element-wise ops, torch as one fused kernel of the same formula (~15% of a GPT-2 step).
_FUSED_ACTIVATIONS = {"gelu_new": "gelu_pytorch_tanh"}


def activation(name: str) -> nn.Module:
    """The activation transformers calls ``name``, in its fastest equivalent form."""
    return ACT2FN[_FUSED_ACTIVATIONS.get(name, name)]


class MLP(nn.Module):
    """``down(act(up(x)))`` — BERT, GPT-2, nanoGPT."""

    def __init__(self, hidden_size: int, intermediate_size: int, activation_name: str, bias: bool = True):
        super().__init__()
        self.up = nn.Linear(hidden_size, intermediate_size, bias=bias)
        self.act = activation(activation_name)
        self.down = nn.Linear(intermediate_size, hidden_size, bias=bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(hidden_states)))


class GatedMLP(nn.Module):
    """``down(act(gate(x)) * up(x))`` — Llama's SwiGLU, T5 v1.1's gated GELU."""

    def __init__(self, hidden_size: int, intermediate_size: int, activation_name: str, bias: bool = False):
        super().__init__()
        self.gate = nn.Linear(hidden_size, intermediate_size, bias=bias)
        self.up = nn.Linear(hidden_size, intermediate_size, bias=bias)
        self.act = activation(activation_name)
        self.down = nn.Linear(intermediate_size, hidden_size, bias=bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.gate(hidden_states)) * self.up(hidden_states))


def build_mlp(config) -> nn.Module:
    """The feed-forward layer a config asks for through ``mlp_type`` ("mlp" or "gated")."""
    cls = {"mlp": MLP, "gated": GatedMLP}[config.mlp_type]
    return cls(config.hidden_size, config.intermediate_size, config.hidden_act, bias=config.mlp_bias)
