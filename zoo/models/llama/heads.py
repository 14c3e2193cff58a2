"""The Llama family with each task head."""

from ...heads import (
    SentenceEmbeddingHead,
    SequenceClassificationHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
)
from .family import LLAMA
from .model import LlamaPreTrainedModel


class LlamaForSequenceClassification(SequenceClassificationHead, LlamaPreTrainedModel):
    family = LLAMA


class LlamaForTokenClassification(TokenClassificationHead, LlamaPreTrainedModel):
    family = LLAMA


class LlamaForTokenClassificationCRF(TokenClassificationCRFHead, LlamaPreTrainedModel):
    family = LLAMA


class LlamaForSentenceEmbedding(SentenceEmbeddingHead, LlamaPreTrainedModel):
    family = LLAMA
