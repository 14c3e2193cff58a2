"""ModernBERT with each task head.

transformers' ModernBERT classifiers run the prediction head (dense + activation + norm, ``head.``) between
the encoder and the classifier layer, and the sequence classifier pools by ``config.classifier_pooling``;
the two mixins below add exactly that to the shared heads, so the classes keep transformers' layout (a
masked-LM checkpoint's ``head.`` loads into them, as in transformers).
"""

import torch

from ...heads import (
    SentenceEmbeddingHead,
    SequenceClassificationHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
    mean_pool,
)
from .family import MODERNBERT
from .model import ModernBertPredictionHead, ModernBertPreTrainedModel


class _PredictionHeadMixin:
    """Adds ModernBERT's prediction head (``head.``) to a shared classifier head."""

    @classmethod
    def new_layers(cls, family) -> tuple[str, ...]:
        return ("head.", *super().new_layers(family))

    def build_backbone(self, config, with_pooler: bool = False) -> None:
        super().build_backbone(config, with_pooler)
        self.head = ModernBertPredictionHead(config)


class PooledPredictionHead(_PredictionHeadMixin):
    """As :class:`~zoo.heads.SequenceClassificationHead` except the pooling is ``config.classifier_pooling``
    ("cls": the first position of every row, as transformers; "mean": the masked mean), followed by the
    prediction head."""

    def pool(self, outputs, input_ids, attention_mask) -> torch.Tensor:
        states = outputs.last_hidden_state
        pooled = (
            states[:, 0] if self.config.classifier_pooling == "cls" else mean_pool(states, attention_mask)
        )
        return self.head(pooled)


class TokenPredictionHead(_PredictionHeadMixin):
    """As :class:`~zoo.heads.TokenClassificationHead` except the emissions read the prediction head's
    output."""

    def emissions(self, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, kwargs):
        outputs = self.encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, kwargs)
        layer = getattr(self, self.family.token_layer)
        return outputs, layer(self.dropout(self.head(outputs.last_hidden_state)))


class ModernBertForSequenceClassification(
    PooledPredictionHead, SequenceClassificationHead, ModernBertPreTrainedModel
):
    family = MODERNBERT


class ModernBertForTokenClassification(
    TokenPredictionHead, TokenClassificationHead, ModernBertPreTrainedModel
):
    family = MODERNBERT


class ModernBertForTokenClassificationCRF(
    TokenPredictionHead, TokenClassificationCRFHead, ModernBertPreTrainedModel
):
    family = MODERNBERT


class ModernBertForSentenceEmbedding(SentenceEmbeddingHead, ModernBertPreTrainedModel):
    family = MODERNBERT
