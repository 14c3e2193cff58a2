"""Prompt text in, generated text out, for any causal LM with a tokenizer (zoo or transformers)."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

DEFAULT_MAX_NEW_TOKENS = 64


@torch.no_grad()
def generate_text(
    model: PreTrainedModel,
    tokenizer,
    prompt: str,
    max_new_tokens: int | None = None,
    return_full_text: bool = True,
    context_length: int | None = None,
    **generate_kwargs,
) -> str:
    """``model.generate`` on the tokenized prompt, decoded (greedy unless ``do_sample=True`` is passed).

    Returns the prompt followed by the continuation, or only the continuation when
    ``return_full_text=False``. ``context_length`` (learned positions) bounds prompt + new tokens.
    """
    if tokenizer is None:
        raise ValueError(
            f"{type(model).__name__} has no tokenizer for text generation: pass tokenizer= "
            "(zoo.train_bpe_tokenizer, zoo.load_tokenizer) or call generate with token ids"
        )
    if max_new_tokens is None:
        max_new_tokens = model.generation_config.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
    encoded = tokenizer(prompt, return_tensors="pt")
    # Only ids and mask: a GPT-2-style model would add token_type_ids to its embeddings.
    encoded = {
        key: encoded[key].to(model.device) for key in ("input_ids", "attention_mask") if key in encoded
    }
    prompt_length = encoded["input_ids"].shape[1]
    if context_length is not None and prompt_length + max_new_tokens > context_length:
        raise ValueError(
            f"prompt ({prompt_length} tokens) + max_new_tokens ({max_new_tokens}) exceeds the model's "
            f"context of {context_length} positions; shorten the prompt or ask for fewer tokens"
        )
    if model.generation_config.pad_token_id is None and "pad_token_id" not in generate_kwargs:
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        generate_kwargs["pad_token_id"] = pad
    output = model.generate(**encoded, max_new_tokens=max_new_tokens, **generate_kwargs)
    tokens = output[0] if return_full_text else output[0, prompt_length:]
    return tokenizer.decode(tokens, skip_special_tokens=True)
