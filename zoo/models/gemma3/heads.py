"""The Gemma 3 family with each task head."""

from ...heads import (
    SentenceEmbeddingHead,
    SequenceClassificationHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
)
from .family import GEMMA3
from .model import Gemma3PreTrainedModel


class Gemma3ForSequenceClassification(SequenceClassificationHead, Gemma3PreTrainedModel):
    family = GEMMA3


class Gemma3ForTokenClassification(TokenClassificationHead, Gemma3PreTrainedModel):
    family = GEMMA3


class Gemma3ForTokenClassificationCRF(TokenClassificationCRFHead, Gemma3PreTrainedModel):
    family = GEMMA3


class Gemma3ForSentenceEmbedding(SentenceEmbeddingHead, Gemma3PreTrainedModel):
    family = GEMMA3
