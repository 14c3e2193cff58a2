"""The Phi-3 family with each task head."""

from ...heads import (
    SentenceEmbeddingHead,
    SequenceClassificationHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
)
from .family import PHI3
from .model import Phi3PreTrainedModel


class Phi3ForSequenceClassification(SequenceClassificationHead, Phi3PreTrainedModel):
    family = PHI3


class Phi3ForTokenClassification(TokenClassificationHead, Phi3PreTrainedModel):
    family = PHI3


class Phi3ForTokenClassificationCRF(TokenClassificationCRFHead, Phi3PreTrainedModel):
    family = PHI3


class Phi3ForSentenceEmbedding(SentenceEmbeddingHead, Phi3PreTrainedModel):
    family = PHI3
