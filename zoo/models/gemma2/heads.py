"""The Gemma 2 family with each task head."""

from ...heads import (
    SentenceEmbeddingHead,
    SequenceClassificationHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
)
from .family import GEMMA2
from .model import Gemma2PreTrainedModel


class Gemma2ForSequenceClassification(SequenceClassificationHead, Gemma2PreTrainedModel):
    family = GEMMA2


class Gemma2ForTokenClassification(TokenClassificationHead, Gemma2PreTrainedModel):
    family = GEMMA2


class Gemma2ForTokenClassificationCRF(TokenClassificationCRFHead, Gemma2PreTrainedModel):
    family = GEMMA2


class Gemma2ForSentenceEmbedding(SentenceEmbeddingHead, Gemma2PreTrainedModel):
    family = GEMMA2
