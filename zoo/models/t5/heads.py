"""T5's encoder with each task head."""

from ...heads import (
    SentenceEmbeddingHead,
    SequenceClassificationHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
)
from .family import T5
from .model import T5PreTrainedModel


class T5ForSequenceClassification(SequenceClassificationHead, T5PreTrainedModel):
    family = T5


class T5ForTokenClassification(TokenClassificationHead, T5PreTrainedModel):
    family = T5


class T5ForTokenClassificationCRF(TokenClassificationCRFHead, T5PreTrainedModel):
    family = T5


class T5ForSentenceEmbedding(SentenceEmbeddingHead, T5PreTrainedModel):
    family = T5
