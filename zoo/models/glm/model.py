"""GLM: word + position + block-position embeddings -> pre-LN blocks -> final LayerNorm -> tied LM head.

GLM differs from GPT-2 only in its inputs, which follow FlagAI:

* ``position_ids`` of shape (batch, 2, seq): the position and the block position. Context tokens
  count positions from 0 with block position 0; the tokens of a blank being filled all share the
  position of its mask token and count block positions 1, 2, ...
* ``attention_mask`` is the separation index ``sep`` (a scalar or one per row): attention is
  bidirectional over the context ``[0, sep)`` and causal after it. A (batch, 1, query, key) 0/1
  matrix is taken as is. A (batch, key) ``attention_mask`` is transformers' padding mask; ``sep``
  then comes as its own argument (``generate`` keeps attention_mask 2D, so blank filling passes ``sep``;
  left-padded batches pass both).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

from ...blocks import PreNormDecoderBlock
from ...decoding import decoder_inputs, lm_logits
from ...fused_loss import linear_cross_entropy
from ...hf_internals import (
    Cache,
    OutputRecorder,
    ZooGenerationMixin,
    cache_key_length,
    can_return_tuple,
    capture_outputs,
    checked_forward,
    fixed_cross_entropy,
    forward_builds_mask,
    require_full_cache,
)
from ...layers import Attention
from ...modeling_base import ZooPreTrainedModel
from .config import GLM_REFERENCE_TYPE, GLMConfig, is_flagai_glm_config
from .weights import GLM_WEIGHT_MAP


def blank_infilling_mask(
    attention_mask: torch.Tensor | int | None,
    query_length: int,
    past_length: torch.Tensor | int,
    device: torch.device,
    sep: torch.Tensor | int | None = None,
    key_length: int | None = None,
) -> torch.Tensor:
    """Boolean (batch or 1, 1, query, key) mask, True where attention is allowed.

    The keys are the ``key_length`` positions the cache hands attention: by default ``past_length +
    query_length`` (a dynamic cache's); with a static cache, its allocated length, whose slots after the
    written ones are masked out as later positions are.
    """
    if key_length is None:
        key_length = past_length + query_length
    mask = torch.as_tensor(attention_mask, device=device) if attention_mask is not None else None
    if mask is not None and mask.dim() >= 3:
        mask = mask[:, None] if mask.dim() == 3 else mask
        return _fit_keys(mask.bool(), key_length)
    if mask is not None and mask.dim() <= 1:  # FlagAI passes sep as the attention mask
        mask, sep = None, mask
    queries = past_length + torch.arange(query_length, device=device).view(-1, 1)
    keys = torch.arange(key_length, device=device).view(1, -1)
    allowed = (keys <= queries)[None, None]  # no sep: left to right, as the Hub's GLM defaults to
    if sep is not None:  # the context [0, sep) is visible to every query
        allowed = allowed | (keys[None, None] < torch.as_tensor(sep, device=device).reshape(-1, 1, 1, 1))
    if mask is not None:  # (batch, key) padding mask
        allowed = allowed & _fit_keys(mask.bool(), key_length)[:, None, None]
    return allowed


def _fit_keys(mask: torch.Tensor, key_length: int) -> torch.Tensor:
    """``mask`` over its last ``key_length`` keys (FlagAI's memory comes first), extended with masked-out
    keys to ``key_length`` when it spans only the written ones (a static cache's)."""
    mask = mask[..., -key_length:]
    return nn.functional.pad(mask, (0, key_length - mask.shape[-1]))


def _blank_positions(row: Sequence[int], mask_token_ids: Sequence[int]) -> list[int]:
    """Indices of the mask tokens of one context, in order: the blanks FlagAI fills, one after another."""
    return [i for i, token in enumerate(row) if token in mask_token_ids]


def _context_rows(
    context_ids: torch.LongTensor | Sequence[Sequence[int]], attention_mask: torch.Tensor | None
) -> list[list[int]]:
    """One list of token ids per row; a tensor's padding (``attention_mask`` 0) is dropped."""
    if not isinstance(context_ids, torch.Tensor):
        return [list(row) for row in context_ids]
    if attention_mask is None:
        return context_ids.tolist()
    keep = attention_mask.bool().tolist()
    return [[t for t, k in zip(row, kept) if k] for row, kept in zip(context_ids.tolist(), keep)]


def blank_infilling_inputs(
    context_ids: torch.LongTensor | Sequence[Sequence[int]],
    mask_token_ids: Sequence[int],
    sop_token_id: int,
    attention_mask: torch.Tensor | None = None,
    pad_token_id: int = 0,
    filled: Sequence[Sequence[Sequence[int]]] | None = None,
) -> dict[str, torch.Tensor]:
    """``generate`` inputs that fill the next blank of each row, laid out as FlagAI's GLM generation.

    ``context_ids`` is a (batch, length) tensor, optionally left padded and described by its
    (batch, length) 0/1 ``attention_mask``, or one list of token ids per row (of any lengths). The
    context (holding ``[MASK]``, ``[sMASK]`` or ``[gMASK]``) is attended bidirectionally; ``[sop]``
    starts the blank at the mask token's position, block position 1. ``filled[row]`` holds the tokens
    already fed for the row's earlier blanks (FlagAI's ``glm_generate_sample``): each follows the
    context as ``[sop]`` + tokens at its mask token's position, block positions 1, 2, ..., attended
    causally, and the next blank is the mask token after them. Rows are left padded with
    ``pad_token_id``; ``sep`` (per row) ends the padded context and ``attention_mask`` hides the padding.
    """
    if not mask_token_ids:
        raise ValueError("mask_token_ids is empty: set mask_token_id / smask_token_id / gmask_token_id")
    device = context_ids.device if isinstance(context_ids, torch.Tensor) else None
    rows = _context_rows(context_ids, attention_mask)
    filled = filled if filled is not None else [[] for _ in rows]
    mask_token_ids = list(mask_token_ids)
    sequences, positions, blocks, context_lengths = [], [], [], []
    for row, spans in zip(rows, filled):
        blanks = _blank_positions(row, mask_token_ids)
        if len(blanks) <= len(spans):
            if not blanks:
                raise ValueError(f"every row of context_ids needs one of the mask tokens {mask_token_ids}")
            raise ValueError(f"a row has {len(blanks)} blanks and all of them are filled already")
        ids, pos, block = list(row), list(range(len(row))), [0] * len(row)
        for blank_at, span in zip(blanks, [*spans, []]):  # the earlier blanks, then the next one
            ids += [sop_token_id, *span]
            pos += [blank_at] * (len(span) + 1)
            block += list(range(1, len(span) + 2))
        sequences.append(ids)
        positions.append(pos)
        blocks.append(block)
        context_lengths.append(len(row))
    length = max(map(len, sequences))
    pads = [length - len(ids) for ids in sequences]

    def left_pad(values: list[list[int]], fill: int) -> torch.Tensor:
        return torch.tensor([[fill] * pad + row for pad, row in zip(pads, values)], device=device)

    return {
        "input_ids": left_pad(sequences, pad_token_id),
        "position_ids": torch.stack([left_pad(positions, 0), left_pad(blocks, 0)], dim=1),
        "attention_mask": left_pad([[1] * len(ids) for ids in sequences], 0),
        "sep": torch.tensor([pad + n for pad, n in zip(pads, context_lengths)], device=device),
    }


class GLMPreTrainedModel(ZooPreTrainedModel):
    config_class = GLMConfig
    config: GLMConfig
    _no_split_modules = ["PreNormDecoderBlock"]
    has_transformers_counterpart = False  # its reference layout is FlagAI's (save_reference writes it)
    _supports_flash_attn = False  # blank-infilling masks are not causal: they need a 4D mask
    _supports_flex_attn = False  # ... a boolean tensor GLM builds itself, never a BlockMask
    _can_record_outputs = {
        "hidden_states": PreNormDecoderBlock,
        "attentions": OutputRecorder(Attention, index=1),
    }
    weight_maps = {GLM_REFERENCE_TYPE: GLM_WEIGHT_MAP}

    @classmethod
    def reference_type_of(cls, data: dict) -> str | None:
        return GLM_REFERENCE_TYPE if is_flagai_glm_config(data) else super().reference_type_of(data)


class GLMModel(GLMPreTrainedModel):
    reference_architectures = {GLM_REFERENCE_TYPE: "GLMModel"}

    def __init__(self, config: GLMConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        if config.block_position_encoding:
            self.embed_block_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.dropout = nn.Dropout(config.embedding_dropout)
        self.layers = nn.ModuleList(PreNormDecoderBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    @checked_forward
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | int | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        sep: torch.Tensor | int | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        """``position_ids`` (batch, 2, seq) and ``attention_mask`` (``sep``) as in the module docstring."""
        inputs_embeds, cache, position_ids, use_cache = decoder_inputs(
            self,
            input_ids,
            inputs_embeds,
            cache,
            position_ids,
            use_cache,
            kwargs,
            default_positions=False,
        )
        require_full_cache(self, cache, "its context is visible from every position")
        batch, length = inputs_embeds.shape[:2]
        past_length = cache.get_seq_length() if cache is not None else 0  # a tensor in a static cache
        if position_ids is None:  # left to right, no blank: positions after the cache, block position 0
            positions = past_length + torch.arange(length, device=inputs_embeds.device)
            position_ids = positions.expand(batch, -1)
            if self.config.block_position_encoding:
                position_ids = torch.stack([position_ids, torch.zeros_like(position_ids)], dim=1)
        expected_dim = 3 if self.config.block_position_encoding else 2
        if position_ids.dim() != expected_dim:
            raise ValueError(
                f"position_ids must have shape {'(batch, 2, seq)' if expected_dim == 3 else '(batch, seq)'} "
                f"(block_position_encoding={self.config.block_position_encoding}), got {tuple(position_ids.shape)}"
            )

        if self.config.block_position_encoding:
            hidden_states = (
                inputs_embeds
                + self.embed_positions(position_ids[:, 0])
                + self.embed_block_positions(position_ids[:, 1])
            )
        else:
            hidden_states = inputs_embeds + self.embed_positions(position_ids)
        hidden_states = self.dropout(hidden_states)

        mask = blank_infilling_mask(
            attention_mask,
            length,
            past_length,
            inputs_embeds.device,
            sep=sep,
            key_length=cache_key_length(cache, length),
        )
        for block in self.layers:
            hidden_states = block(hidden_states, mask, cache=cache, **kwargs)
        return BaseModelOutputWithPast(
            last_hidden_state=self.norm(hidden_states), cache=cache if use_cache else None
        )


@forward_builds_mask
class GLMForSeq2Seq(GLMPreTrainedModel, ZooGenerationMixin):
    """GLM with its LM head (the tied word embeddings): blank filling and its training loss."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    reference_architectures = {GLM_REFERENCE_TYPE: "GLMForConditionalGeneration"}
    criterion_loss_type = "ForMaskedLM"  # labels arrive aligned with the logits (FlagAI's target_ids)

    def __init__(self, config: GLMConfig):
        super().__init__(config)
        self.model = GLMModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def blank_infilling_inputs(
        self,
        context_ids: torch.LongTensor | Sequence[Sequence[int]],
        attention_mask: torch.Tensor | None = None,
        filled: Sequence[Sequence[Sequence[int]]] | None = None,
    ) -> dict[str, torch.Tensor]:
        """:func:`blank_infilling_inputs` with the mask, ``[sop]`` and padding ids of the config."""
        if self.config.sop_token_id is None:
            raise ValueError("config.sop_token_id is not set; pass the GLM tokenizer's [sop] id")
        return blank_infilling_inputs(
            context_ids,
            self.config.blank_token_ids,
            self.config.sop_token_id,
            attention_mask=attention_mask,
            pad_token_id=self.config.pad_token_id or 0,
            filled=filled,
        )

    @torch.no_grad()
    def fill_blanks(
        self,
        context_ids: torch.LongTensor | Sequence[Sequence[int]],
        max_new_tokens: int = 64,
        attention_mask: torch.Tensor | None = None,
        **generate_kwargs,
    ) -> list[list[list[int]]]:
        """Fill every blank of every context, in order, as FlagAI's ``glm_generate_sample`` does.

        Returns ``spans[row][blank]``: the token ids generated for each mask token of each row, without
        ``[sop]`` and ``[eop]``. Each blank is one :meth:`generate` call over the whole batch (greedy,
        sampling or beam search from ``generate_kwargs``) that stops at ``config.eop_token_id`` or after
        ``max_new_tokens`` tokens. Later blanks see the context and the blanks filled before them, as
        FlagAI lays them out; like FlagAI, a blank cut at ``max_new_tokens`` keeps its last token in
        the output but not in what later blanks attend to (FlagAI never feeds that token).
        ``context_ids`` and ``attention_mask`` are taken as by :meth:`blank_infilling_inputs`.
        """
        rows = _context_rows(context_ids, attention_mask)
        blank_counts = [len(_blank_positions(row, self.config.blank_token_ids)) for row in rows]
        eop = self.config.eop_token_id
        pad = generate_kwargs.pop("pad_token_id", None)
        pad = pad if pad is not None else (self.config.pad_token_id or 0)
        spans: list[list[list[int]]] = [[] for _ in rows]
        fed: list[list[list[int]]] = [[] for _ in rows]  # what later blanks attend to
        for blank in range(max(blank_counts, default=0)):
            active = [i for i, count in enumerate(blank_counts) if count > blank]
            inputs = self.blank_infilling_inputs([rows[i] for i in active], filled=[fed[i] for i in active])
            inputs = {key: value.to(self.device) for key, value in inputs.items()}
            output = self.generate(
                **inputs, max_new_tokens=max_new_tokens, eos_token_id=eop, pad_token_id=pad, **generate_kwargs
            )
            for i, new in zip(active, output[:, inputs["input_ids"].shape[1] :].tolist()):
                if eop is not None and eop in new:
                    span = new[: new.index(eop)]
                    fed[i].append(span)
                else:  # cut at max_new_tokens: FlagAI leaves the last token out of its memory
                    span = new[:max_new_tokens]
                    fed[i].append(span[:-1])
                spans[i].append(span)
        return spans

    @checked_forward
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | int | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        target_ids: torch.LongTensor | None = None,
        loss_mask: torch.Tensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        sep: torch.Tensor | int | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """``labels[i]`` is the token predicted at position ``i`` (GLM's targets come shifted; -100 is
        ignored). FlagAI's batches (``target_ids`` with ``loss_mask``) are accepted instead."""
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        if labels is None and target_ids is not None:
            labels = target_ids if loss_mask is None else target_ids.masked_fill(loss_mask == 0, -100)
        outputs = self.model(
            input_ids=input_ids,
            position_ids=position_ids,
            attention_mask=attention_mask,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            sep=sep,
            **kwargs,
        )
        loss = None
        # Not the causal-LM loss: it shifts labels, and GLM's are already shifted.
        if labels is not None and self.fuses_loss(self.lm_head, logits_to_keep):
            loss, logits = linear_cross_entropy(
                outputs.last_hidden_state,
                self.lm_head,
                labels,
                shift=False,
                num_items_in_batch=num_items_in_batch,
            )
        else:
            logits = lm_logits(self.lm_head, outputs.last_hidden_state, logits_to_keep)
            if labels is not None:
                loss = fixed_cross_entropy(
                    logits.float().reshape(-1, logits.shape[-1]),
                    labels.to(logits.device).reshape(-1),
                    num_items_in_batch=num_items_in_batch,
                )
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    # generate's bookkeeping of position_ids assumes (batch, seq) positions counting on by one; GLM's
    # are (batch, 2, seq) and a generated token keeps its blank's position (see the module docstring).
    generation_owned_inputs = ("position_ids",)

    def advance_generation_inputs(self, owned, num_new_tokens):
        """A generated token keeps its blank's position and counts the block position on (transformers
        would add 1 to both); ``sep`` stays as it is (generated tokens come after it)."""
        positions = owned["position_ids"]
        steps = torch.arange(1, num_new_tokens + 1, device=positions.device)
        last = positions[..., -1:]
        if positions.dim() == 3:  # (position, block position)
            new = torch.stack([last[:, 0].expand(-1, num_new_tokens), last[:, 1] + steps], dim=1)
        else:
            new = last + steps
        return {"position_ids": torch.cat([positions, new], dim=-1)}
