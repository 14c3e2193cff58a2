"""The preamble every decoder-only base model shares: embeddings, KV cache and position ids."""

from __future__ import annotations

import torch
from torch import nn

from .hf_internals import Cache, DynamicCache, compile_config_for_decoding
from .layers import positions_after_cache

# compile_config_for_decoding: generate(..., cache_implementation="static", compile_config=...) compiles the
# decode step on any device (README, "Lean decoding").
__all__ = ["compile_config_for_decoding", "decoder_inputs", "lm_logits"]


def decoder_inputs(
    model: nn.Module,
    input_ids: torch.LongTensor | None,
    inputs_embeds: torch.Tensor | None,
    cache: Cache | None,
    position_ids: torch.LongTensor | None,
    use_cache: bool | None,
    kwargs: dict,
    default_positions: bool = True,
) -> tuple[torch.Tensor, Cache | None, torch.LongTensor | None, bool]:
    """(inputs_embeds, cache, position_ids, use_cache) for ``model.forward``; strips capture flags from kwargs.

    A cache is created only when decoding (``use_cache`` defaults to the config's, off in training);
    positions continue after what the cache holds (unless ``default_positions=False``: the family
    lays out its own).
    """
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("pass exactly one of input_ids or inputs_embeds")
    kwargs.pop("output_attentions", None)
    kwargs.pop("output_hidden_states", None)
    if inputs_embeds is None:
        inputs_embeds = model.embed_tokens(input_ids)
    if use_cache is None:
        use_cache = model.config.use_cache and not model.training
    if use_cache and cache is None:
        cache = DynamicCache(config=model.config)
    if position_ids is None and default_positions:
        past_length = cache.get_seq_length() if cache is not None else 0
        position_ids = positions_after_cache(inputs_embeds.shape, past_length, inputs_embeds.device)
    return inputs_embeds, cache, position_ids, use_cache


def lm_logits(
    lm_head: nn.Module, hidden_states: torch.Tensor, logits_to_keep: int | torch.Tensor
) -> torch.Tensor:
    """Vocabulary logits for the positions ``logits_to_keep`` selects (0: all; n: the last n; a tensor: those)."""
    if isinstance(logits_to_keep, int) and logits_to_keep > 0:
        hidden_states = hidden_states[:, -logits_to_keep:]
    elif isinstance(logits_to_keep, torch.Tensor):
        hidden_states = hidden_states[:, logits_to_keep]
    return lm_head(hidden_states)
