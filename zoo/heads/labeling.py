"""Sequence labelling (token classification), with a softmax or a CRF over the tag sequence.

Both take emissions from the same layer (``classifier``; Llama: ``score``, as transformers names
them), so a softmax checkpoint's layer loads into the CRF head and only ``crf`` is new.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import initialization as init
from transformers.modeling_outputs import TokenClassifierOutput

from ..hf_internals import ForTokenClassification, can_return_tuple, checked_forward
from .base import HeadMixin
from .crf import CRF


class TokenClassificationHead(HeadMixin):
    """``config.num_labels`` logits per token; the loss is cross-entropy with -100 labels ignored."""

    head_kind = "sequence-labeling"
    class_suffix = "TokenClassification"

    @classmethod
    def new_layers(cls, family) -> tuple[str, ...]:
        return (f"{family.token_layer}.",)

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.build_backbone(config)
        self.dropout = self.head_dropout(config)
        setattr(self, self.family.token_layer, nn.Linear(config.hidden_size, config.num_labels))
        self.build_extra_layers(config)
        self.post_init()

    def build_extra_layers(self, config) -> None:
        """Layers a variant adds after the emission layer (the CRF)."""

    def emissions(self, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, kwargs):
        outputs = self.encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, kwargs)
        layer = getattr(self, self.family.token_layer)
        return outputs, layer(self.dropout(outputs.last_hidden_state))

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
    ) -> TokenClassifierOutput:
        """``labels``: (batch, seq) tag ids, -100 where no tag is predicted (padding, sub-words)."""
        outputs, logits = self.emissions(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, kwargs
        )
        loss = None
        if labels is not None:  # the sum over num_items_in_batch when the Trainer passes it: exact GA
            items = kwargs.get("num_items_in_batch")
            loss = ForTokenClassification(logits, labels, self.config, num_items_in_batch=items)
        return TokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class TokenClassificationCRFHead(TokenClassificationHead):
    """Emissions as the softmax head, scored by a linear-chain CRF.

    ``logits`` are the emissions. The loss is the CRF negative log-likelihood, averaged over the
    batch, of the tag path through the positions whose label is not -100 and whose attention mask
    is 1 (sub-word positions labelled -100 inside a word sequence are left out of the chain).
    :meth:`decode` gives the Viterbi tag paths.
    """

    head_kind = "sequence-labeling-crf"
    class_suffix = "TokenClassificationCRF"

    @classmethod
    def new_layers(cls, family) -> tuple[str, ...]:
        return (f"{family.token_layer}.", "crf.")

    accepts_loss_kwargs = False  # a per-sequence mean

    def build_extra_layers(self, config) -> None:
        self.crf = CRF(config.num_labels)

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, CRF):
            for param in module.parameters():
                init.uniform_(param, -0.1, 0.1)

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
    ) -> TokenClassifierOutput:
        outputs, logits = self.emissions(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, kwargs
        )
        loss = self._crf_loss(logits, labels, attention_mask) if labels is not None else None
        return TokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )

    def _crf_loss(
        self, logits: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None = None
    ):
        """CRF negative log-likelihood over the labelled (!= -100), attended positions."""
        mask = labels != -100
        if attention_mask is not None:
            mask = mask & attention_mask.to(mask.device).bool()
        return self.crf.neg_log_likelihood(logits, labels.clamp(min=0), mask)

    @property
    def criterion(self):
        """The forward's loss as ``criterion(logits, labels, attention_mask=None)``: the CRF NLL."""
        return lambda logits, labels, attention_mask=None, **_: self._crf_loss(logits, labels, attention_mask)

    def decode(self, logits: torch.Tensor, mask: torch.Tensor | None = None) -> list[list[int]]:
        """Best tag path per row over the positions where ``mask`` is 1 (all when None): e.g. the
        attention mask, or ``labels != -100`` for one tag per word."""
        return self.crf.decode(logits, mask)
