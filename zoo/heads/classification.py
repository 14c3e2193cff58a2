"""Sequence classification (and regression) on any family's backbone.

Pooling follows the family (``zoo.family.Family.sequence_pooling``): BERT / RoBERTa take the pooler's
tanh(dense([CLS])) as transformers' ``BertForSequenceClassification``; decoders take the last
non-padding token found with ``config.pad_token_id`` (left or right padding) into a bias-free
``score``, as transformers' ``GPT2ForSequenceClassification`` / ``LlamaForSequenceClassification``;
T5's encoder and bidirectional GLM take the masked mean of the token states.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from ..hf_internals import ForSequenceClassificationLoss, can_return_tuple, checked_forward
from .base import HeadMixin, last_token_pool, mean_pool


class SequenceClassificationHead(HeadMixin):
    """``config.num_labels`` logits per sequence; ``config.problem_type`` picks the loss as in transformers
    (regression: MSE, single_label_classification: cross-entropy, multi_label_classification: BCE)."""

    head_kind = "sequence-classification"
    class_suffix = "SequenceClassification"
    # The loss is a per-sequence mean whatever the Trainer's gradient accumulation: let it scale.
    accepts_loss_kwargs = False

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.build_backbone(config, with_pooler=self.family.sequence_pooling == "pooler")
        self.dropout = self.head_dropout(config)
        bias = self.family.sequence_layer == "classifier"  # decoders' `score` has none
        setattr(self, self.family.sequence_layer, nn.Linear(config.hidden_size, config.num_labels, bias=bias))
        self.post_init()

    @classmethod
    def new_layers(cls, family) -> tuple[str, ...]:
        return (
            f"{family.sequence_layer}.",
            *(("model.pooler.",) if family.sequence_pooling == "pooler" else ()),
        )

    def pool(self, outputs, input_ids, attention_mask) -> torch.Tensor:
        pooling = self.family.sequence_pooling
        if pooling == "pooler":
            return outputs.pooler_output
        if pooling == "last":
            return last_token_pool(
                outputs.last_hidden_state, input_ids, attention_mask, self.config.pad_token_id
            )
        return mean_pool(outputs.last_hidden_state, attention_mask)

    @checked_forward
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """``labels``: class ids (batch,), floats (batch,) for regression or (batch, num_labels) multi-label."""
        outputs = self.encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, kwargs)
        pooled = self.pool(outputs, input_ids, attention_mask)
        logits = getattr(self, self.family.sequence_layer)(self.dropout(pooled))
        loss = None
        if labels is not None:
            loss = ForSequenceClassificationLoss(labels, logits, self.config)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
