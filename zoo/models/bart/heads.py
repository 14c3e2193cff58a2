"""BART with each task head: the token-level heads and the sentence embedding on the encoder (as T5's),
sequence classification on the whole encoder-decoder (transformers' ``BartForSequenceClassification``)."""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqSequenceClassifierOutput

from ...heads import (
    HeadMixin,
    SentenceEmbeddingHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
    last_index,
)
from ...hf_internals import ForSequenceClassificationLoss, can_return_tuple, checked_forward
from .family import BART
from .model import BartModel, BartPreTrainedModel


class BartClassificationHead(nn.Module):
    """transformers' ``BartClassificationHead``: ``out_proj(dropout(tanh(dense(dropout(x)))))``."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = torch.tanh(self.dense(self.dropout(hidden_states)))
        return self.out_proj(self.dropout(hidden_states))


class EosClassificationHead(HeadMixin):
    """As :class:`~zoo.heads.SequenceClassificationHead` except BART's layout: the whole encoder-decoder runs
    (the decoder reads ``input_ids`` shifted right) and the decoder state at each row's last ``eos`` token is
    classified by :class:`BartClassificationHead` (``classifier``; transformers' ``classification_head``).

    transformers requires every row to hold the same number of ``eos`` tokens; here each row's last one is
    taken, which is the same state wherever transformers accepts the batch. A row without one (possible
    only for hand-built ids: the tokenizer ends every row with ``eos``) is read at its last attended token,
    and decoder inputs given with another length than ``input_ids`` at their last attended position.
    """

    head_kind = "sequence-classification"
    class_suffix = "SequenceClassification"
    accepts_loss_kwargs = False  # a per-sequence mean

    @classmethod
    def new_layers(cls, family) -> tuple[str, ...]:
        return ("classifier.",)

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = self.base_model_class(config)
        rate = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout
        self.classifier = BartClassificationHead(config.hidden_size, config.num_labels, rate)
        self.post_init()

    def pooled_positions(
        self, input_ids, attention_mask, decoder_states: torch.Tensor, decoder_attention_mask
    ):
        """The decoder position each row is classified at (see the class docstring)."""
        batch, length = decoder_states.shape[:2]
        if input_ids is not None and input_ids.shape[1] == length:
            is_eos = torch.isin(input_ids, torch.tensor(self.config.eos_token_id, device=input_ids.device))
            attended = attention_mask.bool() if attention_mask is not None else torch.ones_like(is_eos)
            return torch.where(is_eos.any(dim=-1), last_index(is_eos), last_index(attended))
        if decoder_attention_mask is None:
            return torch.full((batch,), length - 1, device=decoder_states.device)
        return last_index(decoder_attention_mask.bool())

    @checked_forward
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> Seq2SeqSequenceClassifierOutput:
        """``labels``: class ids (batch,), floats (batch,) for regression or (batch, num_labels) multi-label."""
        kwargs.pop("num_items_in_batch", None)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            inputs_embeds=inputs_embeds,
            decoder_inputs_embeds=decoder_inputs_embeds,
            use_cache=False,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        positions = self.pooled_positions(
            input_ids, attention_mask, hidden_states, decoder_attention_mask
        ).to(hidden_states.device)
        pooled = hidden_states[torch.arange(hidden_states.shape[0], device=hidden_states.device), positions]
        logits = self.classifier(pooled)
        loss = ForSequenceClassificationLoss(labels, logits, self.config) if labels is not None else None
        return Seq2SeqSequenceClassifierOutput(
            loss=loss,
            logits=logits,
            decoder_hidden_states=outputs.decoder_hidden_states,
            decoder_attentions=outputs.decoder_attentions,
            cross_attentions=outputs.cross_attentions,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states,
            encoder_attentions=outputs.encoder_attentions,
        )


class BartForSequenceClassification(EosClassificationHead, BartPreTrainedModel):
    family = BART
    base_model_class = BartModel


class BartForTokenClassification(TokenClassificationHead, BartPreTrainedModel):
    family = BART


class BartForTokenClassificationCRF(TokenClassificationCRFHead, BartPreTrainedModel):
    family = BART


class BartForSentenceEmbedding(SentenceEmbeddingHead, BartPreTrainedModel):
    family = BART
