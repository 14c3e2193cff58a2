"""Whole-graph ``torch.compile`` for training: every zoo family compiles as one graph, forward and backward.

``TrainingArguments(torch_compile=True)`` through :func:`trainers.build_trainer` (``ZooTrainer``) and
``ModelInterface(..., compile=True)`` both compile with ``fullgraph=True``: a graph break is an error,
never a silent partial graph, and the chunked LM loss (``zoo.fused_loss``), the norms, activations,
rotary embeddings and residual adds land in the same graph for inductor to fuse.

A failure names the family, the class and the options it was compiled with, on top of torch's own
error (:class:`CompileError`); nothing falls back to eager. :class:`CompileTimer` reports the time
the first step spent compiling apart from the steady step time, and how many graphs were compiled
(one per input shape; a recompile at equal shapes would show here).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback

from zoo.errors import ZooError

__all__ = ["CompileError", "CompileTimer", "compile_model", "compile_errors", "compiled_graphs"]


class CompileError(ZooError, RuntimeError):
    """``torch.compile`` failed on a model; the message names the family, class and options, then torch's error."""


def describe(model: nn.Module) -> str:
    """``family 'llama' (LlamaForCausalLM)`` for a zoo model, the class name for anything else."""
    inner = getattr(model, "_orig_mod", model)
    inner = getattr(inner, "module", inner)  # DDP
    name = type(inner).__name__
    try:
        from zoo.family import family_of

        return f"family {family_of(inner)!r} ({name})"
    except (ZooError, KeyError, AttributeError):
        return name


@contextlib.contextmanager
def compile_errors(model: nn.Module, options: dict[str, Any]) -> Iterator[None]:
    """Re-raise dynamo's and inductor's failures inside the block as :class:`CompileError` naming what was compiled."""
    try:
        yield
    except torch._dynamo.exc.TorchDynamoException as error:
        shown = ", ".join(f"{key}={value!r}" for key, value in options.items())
        raise CompileError(
            f"torch.compile({shown}) failed on {describe(model)}: {type(error).__name__}: {error}".rstrip()
            + "\n(fullgraph=True makes any graph break an error; train without compile, or report the break)"
        ) from error


def compile_model(
    model: nn.Module, *, backend: str = "inductor", mode: str | None = None, dynamic: bool | None = None
) -> nn.Module:
    """``torch.compile(model, fullgraph=True, ...)``; the compiled module's calls raise :class:`CompileError`."""
    options = {"fullgraph": True, "backend": backend, "mode": mode, "dynamic": dynamic}
    compiled = torch.compile(model, **options)
    compiled.zoo_compile_options = options
    return compiled


def compiled_graphs() -> int:
    """Graphs dynamo has compiled in this process (``torch._dynamo.utils.counters``)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class CompileTimer(TrainerCallback):
    """Times training steps under ``torch_compile``: the first step (which compiles) apart from the rest.

    After training, :meth:`metrics` gives ``train_compile_seconds`` (first step minus the median step),
    ``train_step_seconds`` (the median of the later steps) and ``train_compiled_graphs`` (graphs compiled
    during training: one per distinct input shape).
    """

    def __init__(self):
        self.durations: list[float] = []
        self._start = 0.0
        self._graphs_before = 0
        self.graphs = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.durations.clear()
        self._graphs_before = compiled_graphs()

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.durations.append(time.perf_counter() - self._start)

    def on_train_end(self, args, state, control, **kwargs):
        self.graphs = compiled_graphs() - self._graphs_before

    def metrics(self) -> dict[str, float]:
        if not self.durations:
            return {}
        steady = statistics.median(self.durations[1:]) if len(self.durations) > 1 else 0.0
        return {
            "train_compile_seconds": round(max(self.durations[0] - steady, 0.0), 3),
            "train_step_seconds": round(steady, 4),
            "train_compiled_graphs": self.graphs,
        }
