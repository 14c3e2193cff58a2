"""XLM-RoBERTa with each task head."""

from ...heads import (
    SentenceEmbeddingHead,
    SequenceClassificationHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
)
from .family import XLM_ROBERTA
from .model import XLMRobertaPreTrainedModel


class XLMRobertaForSequenceClassification(SequenceClassificationHead, XLMRobertaPreTrainedModel):
    family = XLM_ROBERTA


class XLMRobertaForTokenClassification(TokenClassificationHead, XLMRobertaPreTrainedModel):
    family = XLM_ROBERTA


class XLMRobertaForTokenClassificationCRF(TokenClassificationCRFHead, XLMRobertaPreTrainedModel):
    family = XLM_ROBERTA


class XLMRobertaForSentenceEmbedding(SentenceEmbeddingHead, XLMRobertaPreTrainedModel):
    family = XLM_ROBERTA
