"""The Qwen3 family with each task head."""

from ...heads import (
    SentenceEmbeddingHead,
    SequenceClassificationHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
)
from .family import QWEN3
from .model import Qwen3PreTrainedModel


class Qwen3ForSequenceClassification(SequenceClassificationHead, Qwen3PreTrainedModel):
    family = QWEN3


class Qwen3ForTokenClassification(TokenClassificationHead, Qwen3PreTrainedModel):
    family = QWEN3


class Qwen3ForTokenClassificationCRF(TokenClassificationCRFHead, Qwen3PreTrainedModel):
    family = QWEN3


class Qwen3ForSentenceEmbedding(SentenceEmbeddingHead, Qwen3PreTrainedModel):
    family = QWEN3
