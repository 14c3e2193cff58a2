"""BERT / RoBERTa: word + position + token-type embeddings -> post-LN encoder blocks (-> pooler | MLM head)."""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndCrossAttentions, MaskedLMOutput

from ...blocks import PostNormEncoderBlock
from ...fused_loss import linear_cross_entropy, loss_kwargs
from ...hf_internals import (
    Cache,
    OutputRecorder,
    can_return_tuple,
    capture_outputs,
    checked_forward,
    packed_bidirectional_mask,
)
from ...layers import Attention, positions_after_cache, positions_from_padding
from ...modeling_base import ZooPreTrainedModel
from .config import BertConfig, RobertaConfig
from .weights import BERT_WEIGHT_MAP, ROBERTA_WEIGHT_MAP


class BertPreTrainedModel(ZooPreTrainedModel):
    config_class = BertConfig
    config: BertConfig
    _no_split_modules = ["PostNormEncoderBlock"]
    _can_record_outputs = {
        "hidden_states": PostNormEncoderBlock,
        "attentions": OutputRecorder(Attention, index=1),
    }
    weight_maps = {"bert": BERT_WEIGHT_MAP, "roberta": ROBERTA_WEIGHT_MAP}


class Pooler(nn.Module):
    """tanh(dense(h[CLS])): BERT's sentence representation for next-sentence prediction."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden_states[:, 0]))


class BertModel(BertPreTrainedModel):
    reference_architectures = {"bert": "BertModel", "roberta": "RobertaModel"}

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.embed_token_types = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.embed_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layers = nn.ModuleList(PostNormEncoderBlock(config, i) for i in range(config.num_hidden_layers))
        self.pooler = Pooler(config.hidden_size) if add_pooling_layer else None
        self.post_init()

    def embed(
        self, input_ids, inputs_embeds, token_type_ids, position_ids, past_length: int = 0
    ) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        if position_ids is None:
            if self.config.positions_from_padding and input_ids is not None:
                position_ids = positions_from_padding(input_ids, self.config.pad_token_id, past_length)
            else:
                offset = self.config.pad_token_id + 1 if self.config.positions_from_padding else 0
                position_ids = positions_after_cache(
                    inputs_embeds.shape, offset + past_length, inputs_embeds.device
                )
        if token_type_ids is None:
            token_type_ids = torch.zeros(
                inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device
            )
        embeddings = (
            inputs_embeds + self.embed_token_types(token_type_ids) + self.embed_positions(position_ids)
        )
        return self.dropout(self.embed_norm(embeddings))

    @checked_forward
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPoolingAndCrossAttentions:
        """``attention_mask``: a (batch, key) padding mask, or a (batch, 1, query, key) mask used as is.

        ``cache`` is for masks under which earlier positions never attend to later ones
        (UniLM's seq2seq mask): the keys and values of cached positions then stay exact. ``use_cache``
        is taken as transformers' BERT takes it; an encoder caches only into a ``cache`` it is given.

        A packed batch (``tasks.packing``): ``position_ids`` restarting at each record's first position
        and no ``attention_mask``; each token then attends to its own record only (block-diagonal).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        kwargs.pop("output_attentions", None)
        kwargs.pop("output_hidden_states", None)
        past_length = cache.get_seq_length() if cache is not None else 0
        hidden_states = self.embed(input_ids, inputs_embeds, token_type_ids, position_ids, past_length)
        mask = packed_bidirectional_mask(
            config=self.config,
            inputs_embeds=hidden_states,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
        )
        for block in self.layers:
            hidden_states = block(hidden_states, mask, cache=cache, **kwargs)
        pooled = self.pooler(hidden_states) if self.pooler is not None else None
        return BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=hidden_states, pooler_output=pooled, cache=cache
        )


class MaskedLMTransform(nn.Module):
    """norm(act(dense(h))), applied before the tied vocabulary projection."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACT2FN[config.hidden_act]
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.norm(self.act(self.dense(hidden_states)))


class BertForMaskedLM(BertPreTrainedModel):
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    _optional_checkpoint_prefixes = ("model.pooler.",)
    reference_architectures = {"bert": "BertForMaskedLM", "roberta": "RobertaForMaskedLM"}
    reference_aliases = ("BertForPreTraining",)  # pre-training checkpoints load into the masked LM

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.model = BertModel(config, add_pooling_layer=False)
        self.head = MaskedLMTransform(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    @checked_forward
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        """``labels`` hold the original ids at masked positions and -100 elsewhere."""
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            **kwargs,
        )
        loss = None
        if labels is not None and self.fuses_loss(self.lm_head):
            loss, logits = linear_cross_entropy(
                self.head(outputs.last_hidden_state), self.lm_head, labels, shift=False, **loss_kwargs(kwargs)
            )
        else:
            logits = self.lm_head(self.head(outputs.last_hidden_state))
            if labels is not None:
                loss = self.loss_function(
                    logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs
                )
        return MaskedLMOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class RobertaModel(BertModel):
    """BERT's encoder with RoBERTa's defaults (``RobertaConfig``); loads ``roberta-base``-layout checkpoints."""

    config_class = RobertaConfig
    reference_architectures = {"roberta": "RobertaModel"}


class RobertaForMaskedLM(BertForMaskedLM):
    config_class = RobertaConfig
    reference_architectures = {"roberta": "RobertaForMaskedLM"}
    reference_aliases = ()
