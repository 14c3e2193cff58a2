"""BERT and RoBERTa with each task head."""

from ...heads import (
    SentenceEmbeddingHead,
    SequenceClassificationHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
)
from .family import BERT, ROBERTA
from .model import BertPreTrainedModel


class BertForSequenceClassification(SequenceClassificationHead, BertPreTrainedModel):
    family = BERT


class BertForTokenClassification(TokenClassificationHead, BertPreTrainedModel):
    family = BERT


class BertForTokenClassificationCRF(TokenClassificationCRFHead, BertPreTrainedModel):
    family = BERT


class BertForSentenceEmbedding(SentenceEmbeddingHead, BertPreTrainedModel):
    family = BERT


class RobertaForSequenceClassification(SequenceClassificationHead, BertPreTrainedModel):
    family = ROBERTA


class RobertaForTokenClassification(TokenClassificationHead, BertPreTrainedModel):
    family = ROBERTA


class RobertaForTokenClassificationCRF(TokenClassificationCRFHead, BertPreTrainedModel):
    family = ROBERTA


class RobertaForSentenceEmbedding(SentenceEmbeddingHead, BertPreTrainedModel):
    family = ROBERTA
