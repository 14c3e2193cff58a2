"""GPT-2 with each task head."""

from ...heads import (
    SentenceEmbeddingHead,
    SequenceClassificationHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
)
from .family import GPT2
from .model import GPT2PreTrainedModel


class GPT2ForSequenceClassification(SequenceClassificationHead, GPT2PreTrainedModel):
    family = GPT2


class GPT2ForTokenClassification(TokenClassificationHead, GPT2PreTrainedModel):
    family = GPT2


class GPT2ForTokenClassificationCRF(TokenClassificationCRFHead, GPT2PreTrainedModel):
    family = GPT2


class GPT2ForSentenceEmbedding(SentenceEmbeddingHead, GPT2PreTrainedModel):
    family = GPT2
