"""UniLM sequence-to-sequence head for BERT and RoBERTa (FlagAI's ``BertForSeq2seq``).

One encoder reads the source and writes the target: the sequence ``[CLS] source [SEP] target [SEP]``
goes through BERT under a mask that is bidirectional over the source and causal over the target, and
the masked-LM head predicts each target token from the position before it. The weights are exactly
those of the family's masked-LM model, so any BERT / RoBERTa masked-LM checkpoint is a starting point.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import CausalLMOutputWithPast

from ...decoding import lm_logits
from ...fused_loss import linear_cross_entropy
from ...hf_internals import (
    Cache,
    DynamicCache,
    ForCausalLMLoss,
    ZooGenerationMixin,
    can_return_tuple,
    causal_mask,
    checked_forward,
    forward_builds_mask,
    require_full_cache,
)
from .config import BertConfig, RobertaConfig
from .model import BertForMaskedLM, BertModel, BertPreTrainedModel, MaskedLMTransform

SOURCE_SEGMENT, TARGET_SEGMENT = 0, 1
# What save_reference writes: UniLM adds a mask, not weights, so the export is the family's masked LM.
_MASKED_LM_ARCHITECTURES = {"bert": "BertForMaskedLM", "roberta": "RobertaForMaskedLM"}


def unilm_block_ids(token_type_ids: torch.Tensor) -> torch.Tensor:
    """transformers' ``block_sequence_ids`` for the UniLM mask: the source (segment 0) is one block attended
    bidirectionally; every target token (segment 1) is its own causal block (-1)."""
    return torch.where(token_type_ids == SOURCE_SEGMENT, 0, -1)


@forward_builds_mask
class BertForSeq2Seq(BertPreTrainedModel, ZooGenerationMixin):
    """BERT + masked-LM head trained and decoded as UniLM (Dong et al., 2019) seq2seq.

    Input contract (one row; batches are padded, right or left, with ``attention_mask`` 0):

    * ``input_ids``: ``[CLS] source [SEP] target [SEP]`` (RoBERTa: ``<s> source </s> target </s>``).
    * ``token_type_ids``: 0 on ``[CLS] source [SEP]``, 1 on ``target [SEP]``; padding may take either.
      Source positions attend to every source position; target position ``i`` attends to the source and
      to target positions ``<= i``; nobody attends to padding. Omitted, a fresh input is all source and
      tokens fed after a cache are all target. With ``type_vocab_size == 1`` (RoBERTa) the segments
      shape only the mask; every token embeds as token type 0.
    * ``labels``: like ``input_ids``, with the token ids on ``target [SEP]`` and -100 on the source and
      on padding. They are NOT shifted by the caller: position ``t`` predicts the token at ``t + 1``
      (the last source ``[SEP]`` predicts the first target token), as a causal LM's loss.
    * ``position_ids``: by default counted over the non-padding tokens of ``attention_mask`` (so a
      left-padded row embeds as it would alone), from 0 (BERT) or ``pad_token_id + 1`` (RoBERTa).

    Generation: ``generate(input_ids=[CLS] source [SEP], attention_mask=..., eos_token_id=sep_id,
    pad_token_id=pad_id)`` with ``token_type_ids`` all 0 or omitted; every generated token gets segment
    1. Greedy and beam search use a KV cache, dynamic or static (``cache_implementation="static"``):
    under this mask no position attends to a later one, so the cached keys and values of a post-LN
    encoder stay exact. Batches are left padded.
    """

    criterion_loss_type = "ForCausalLM"  # position t predicts token t + 1

    _tied_weights_keys = BertForMaskedLM._tied_weights_keys
    _optional_checkpoint_prefixes = BertForMaskedLM._optional_checkpoint_prefixes
    _supports_flash_attn = False  # the mask is not causal: it needs a 4D mask
    _supports_flex_attn = False  # ... built as a tensor the encoder takes as is, never a BlockMask
    # Empty, so that registering this class leaves BertForMaskedLM the class that reference masked-LM
    # checkpoints resolve to; save_reference exports through _MASKED_LM_ARCHITECTURES.
    reference_architectures = {}

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.model = BertModel(config, add_pooling_layer=False)
        self.head = MaskedLMTransform(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    def _position_offset(self) -> int:
        return self.config.pad_token_id + 1 if self.config.positions_from_padding else 0

    def _default_positions(
        self, attention_mask: torch.Tensor | None, batch: int, length: int, past_length: int, device
    ) -> torch.LongTensor:
        if attention_mask is not None and attention_mask.dim() == 2:
            positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -length:]
        else:
            positions = (past_length + torch.arange(length, device=device)).expand(batch, -1)
        return positions + self._position_offset()

    @checked_forward
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cache: Cache | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """Inputs as in the class docstring; ``attention_mask`` is (batch, cached + new) with a cache."""
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.model.embed_tokens(input_ids)
        batch, length = inputs_embeds.shape[:2]
        require_full_cache(self, cache, "its source is visible from every target position")
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        past_length = cache.get_seq_length() if cache is not None else 0  # a tensor in a static cache
        device = inputs_embeds.device

        if token_type_ids is None:
            # (compared as a tensor: a static cache's length is one, and reading it breaks a compiled graph)
            after_cache = torch.as_tensor(past_length, device=device) > 0
            token_type_ids = torch.where(after_cache, TARGET_SEGMENT, SOURCE_SEGMENT).expand(batch, length)
        # (a data-dependent check: left to eager runs, so a compiled decode step stays one graph)
        if (
            not torch.compiler.is_compiling()
            and past_length > 0
            and bool((token_type_ids == SOURCE_SEGMENT).any())
        ):
            raise ValueError(
                "source tokens (token_type_ids 0) after cached positions: feed [CLS] source [SEP] in one "
                "call first, then target tokens (token_type_ids 1)"
            )
        if position_ids is None:
            position_ids = self._default_positions(attention_mask, batch, length, past_length, device)
        mask = causal_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=cache,
            # After a cache every new token is a target token (-1, which unmasks nothing): the UniLM mask
            # is then causal (+ padding) over the cached keys, with no need to read the cache's length.
            block_sequence_ids=unilm_block_ids(token_type_ids),
            allow_is_causal_skip=False,  # the encoder's attention is not causal without a mask
        )
        embedded_types = (
            token_type_ids if self.config.type_vocab_size > 1 else torch.zeros_like(token_type_ids)
        )
        outputs = self.model(
            inputs_embeds=inputs_embeds,
            attention_mask=mask,
            token_type_ids=embedded_types,
            position_ids=position_ids,
            cache=cache,
            **kwargs,
        )
        loss = None
        if labels is not None and self.fuses_loss(self.lm_head, logits_to_keep):
            loss, logits = linear_cross_entropy(
                self.head(outputs.last_hidden_state),
                self.lm_head,
                labels,
                shift=True,
                num_items_in_batch=num_items_in_batch,
            )
        else:
            logits = lm_logits(
                lambda h: self.lm_head(self.head(h)), outputs.last_hidden_state, logits_to_keep
            )
            if labels is not None:
                loss = ForCausalLMLoss(
                    logits, labels, vocab_size=self.config.vocab_size, num_items_in_batch=num_items_in_batch
                )
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=cache if use_cache else None,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    generation_owned_inputs = ("token_type_ids",)

    def initial_generation_inputs(self, inputs_tensor, model_kwargs):
        """The prompt is ``[CLS] source [SEP]``: segment 0 unless the caller passes ``token_type_ids``."""
        if model_kwargs.get("token_type_ids") is None:
            model_kwargs["token_type_ids"] = torch.full(
                inputs_tensor.shape[:2], SOURCE_SEGMENT, dtype=torch.long, device=inputs_tensor.device
            )

    def generation_position_offset(self) -> int:
        """transformers counts positions over the attention mask from 0; RoBERTa's start after its pad id."""
        return self._position_offset()

    def advance_generation_inputs(self, owned, num_new_tokens):
        """Generated tokens are target tokens: segment 1 (transformers would repeat the prompt's last, 0)."""
        token_type_ids = owned["token_type_ids"]
        new = token_type_ids.new_full((token_type_ids.shape[0], num_new_tokens), TARGET_SEGMENT)
        return {"token_type_ids": torch.cat([token_type_ids, new], dim=-1)}

    def save_reference(self, save_directory, max_shard_size: str | int = "5GB"):
        """Write the weights as transformers' masked-LM model of the family (``BertForMaskedLM`` /
        ``RobertaForMaskedLM``): loadable without this package, though it applies a plain encoder mask."""
        self.reference_architectures = _MASKED_LM_ARCHITECTURES
        try:
            return super().save_reference(save_directory, max_shard_size)
        finally:
            del self.reference_architectures


class RobertaForSeq2Seq(BertForSeq2Seq):
    """UniLM seq2seq with RoBERTa's defaults (``RobertaConfig``); loads ``roberta-base``-layout masked-LM checkpoints."""

    config_class = RobertaConfig
