"""GLM with each task head: the whole input is its bidirectional context."""

from ...heads import (
    SentenceEmbeddingHead,
    SequenceClassificationHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
)
from .family import GLM
from .model import GLMPreTrainedModel


class GLMForSequenceClassification(SequenceClassificationHead, GLMPreTrainedModel):
    family = GLM


class GLMForTokenClassification(TokenClassificationHead, GLMPreTrainedModel):
    family = GLM


class GLMForTokenClassificationCRF(TokenClassificationCRFHead, GLMPreTrainedModel):
    family = GLM


class GLMForSentenceEmbedding(SentenceEmbeddingHead, GLMPreTrainedModel):
    family = GLM
