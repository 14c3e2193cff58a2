"""Checks of model inputs against a config's sizes, for the errors torch would give without a name.

They read tensor values, so they run on batches outside compiled graphs: the predictors and collators
call them before a forward, and ``hf_internals.checked_forward`` after a forward failed.
"""

from __future__ import annotations

import torch

from .errors import ModelInputError


def check_model_inputs(config, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> None:
    """Raise :class:`ModelInputError` for inputs ``config``'s sizes cannot take, where the model would fail
    with a bare ``index out of range``. Reads the ids' values: call it on batches, outside compiled graphs."""
    if attention_mask is not None and attention_mask.dim() == 2 and attention_mask.shape != input_ids.shape:
        raise ModelInputError(
            f"attention_mask of shape {tuple(attention_mask.shape)} does not match input_ids "
            f"{tuple(input_ids.shape)}"
        )
    vocab_size = getattr(config, "vocab_size", None)
    if vocab_size is not None and input_ids.numel():
        low, high = int(input_ids.min()), int(input_ids.max())
        if low < 0 or high >= vocab_size:
            raise ModelInputError(
                f"token id {low if low < 0 else high} is outside the vocabulary: vocab_size={vocab_size} "
                f"(ids 0 to {vocab_size - 1})"
            )
    # Rotary (Llama) and relative (T5) positions have no table to run past.
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None or getattr(config, "rope_parameters", None) or config.is_encoder_decoder:
        return
    offset = config.pad_token_id + 1 if getattr(config, "positions_from_padding", False) else 0
    if input_ids.shape[-1] > positions - offset:
        start = f" (positions start at pad_token_id + 1 = {offset})" if offset else ""
        raise ModelInputError(
            f"input_ids hold {input_ids.shape[-1]} positions, more than max_position_embeddings={positions} "
            f"allows{start}"
        )


def position_limit(model, requested: int, reserve: int = 0) -> int:
    """``requested`` capped so that the input (plus ``reserve`` generated tokens) fits the model's
    learned position table; models with relative positions (T5) and configs without a table keep it."""
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None or getattr(config, "is_encoder_decoder", False):
        return requested
    # RoBERTa counts positions from pad_token_id + 1.
    offset = config.pad_token_id + 1 if getattr(config, "positions_from_padding", False) else 0
    return max(1, min(requested, positions - offset - reserve))
