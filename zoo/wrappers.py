"""Any transformers causal LM behind the interface of ``zoo.GPT``.

``CausalLMWrapper(model, tokenizer)`` (or ``wrap("gpt2")``): ``wrapper(ids)`` -> logits,
``wrapper.generate("text") -> str``, ``get_num_params()``, ``model_name``; keyword calls and
``generate`` on token tensors reach the wrapped model unchanged.
"""

from __future__ import annotations

import os

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from .loading import HUB_PATTERNS, resolve_checkpoint
from .text_generation import generate_text

# from_pretrained keywords that say where the checkpoint comes from: they go to resolve_checkpoint.
_HUB_KWARGS = ("revision", "cache_dir", "token", "local_files_only")


class CausalLMWrapper(nn.Module):
    """A transformers causal LM and its tokenizer, with the seeds' model API."""

    def __init__(self, model: PreTrainedModel, tokenizer=None):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer

    def forward(self, *args, **kwargs):
        """``wrapper(idx)`` (a tensor, no labels) -> logits; any other call -> the wrapped model's output."""
        if len(args) == 1 and torch.is_tensor(args[0]) and kwargs.get("labels") is None:
            kwargs.setdefault("use_cache", False)
            return self.model(input_ids=args[0], **kwargs).logits
        return self.model(*args, **kwargs)

    def generate(self, inputs=None, *args, **kwargs):
        """``generate("prompt text") -> str`` with the tokenizer; token tensors go to the model's generate."""
        if isinstance(inputs, str):
            return generate_text(self.model, self.tokenizer, inputs, *args, **kwargs)
        return self.model.generate(inputs, *args, **kwargs)

    def get_num_params(self, trainable_only: bool = False) -> int:
        """Number of parameters; tied parameters count once."""
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad or not trainable_only)

    @property
    def model_name(self) -> str:
        """Where the weights came from (path or Hub id), else the model's class name."""
        return self.model.config.name_or_path or type(self.model).__name__

    @property
    def config(self):
        return self.model.config


def wrap(name_or_model: str | os.PathLike | PreTrainedModel, tokenizer=None, **from_pretrained_kwargs):
    """``CausalLMWrapper`` of a model object, or of a checkpoint (local directory or Hub id) and its tokenizer.

    A Hub id is fetched with ``zoo.loading.resolve_checkpoint`` like ``zoo.load``: without the Hub it
    fails at once with a ``CheckpointNotFoundError`` that says what to do, where transformers would
    retry for most of a minute and raise a bare ``OSError``.
    """
    if isinstance(name_or_model, PreTrainedModel):
        return CausalLMWrapper(name_or_model, tokenizer)
    hub = {key: from_pretrained_kwargs.pop(key) for key in _HUB_KWARGS if key in from_pretrained_kwargs}
    # Any transformers causal LM: torch weights too, and its own code where the caller trusts it.
    patterns = [
        *HUB_PATTERNS,
        "*.bin",
        *(["*.py"] if from_pretrained_kwargs.get("trust_remote_code") else []),
    ]
    directory = resolve_checkpoint(name_or_model, allow_patterns=patterns, **hub)
    model = AutoModelForCausalLM.from_pretrained(directory, **from_pretrained_kwargs)
    model.config.name_or_path = str(name_or_model)
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(directory)
    return CausalLMWrapper(model.eval(), tokenizer)
