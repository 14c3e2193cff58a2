"""DeBERTa-v2 / v3 with each task head."""

from ...heads import (
    SentenceEmbeddingHead,
    SequenceClassificationHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
)
from .family import DEBERTA_V2
from .model import DebertaV2PreTrainedModel


class DebertaV2ForSequenceClassification(SequenceClassificationHead, DebertaV2PreTrainedModel):
    family = DEBERTA_V2


class DebertaV2ForTokenClassification(TokenClassificationHead, DebertaV2PreTrainedModel):
    family = DEBERTA_V2


class DebertaV2ForTokenClassificationCRF(TokenClassificationCRFHead, DebertaV2PreTrainedModel):
    family = DEBERTA_V2


class DebertaV2ForSentenceEmbedding(SentenceEmbeddingHead, DebertaV2PreTrainedModel):
    family = DEBERTA_V2
