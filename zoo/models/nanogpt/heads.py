"""nanoGPT's GPT with each task head: GPT-2's backbone under ``GPTConfig``."""

from ...heads import (
    SentenceEmbeddingHead,
    SequenceClassificationHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
)
from ..gpt2.model import GPT2PreTrainedModel
from .family import NANOGPT


class GPTForSequenceClassification(SequenceClassificationHead, GPT2PreTrainedModel):
    family = NANOGPT


class GPTForTokenClassification(TokenClassificationHead, GPT2PreTrainedModel):
    family = NANOGPT


class GPTForTokenClassificationCRF(TokenClassificationCRFHead, GPT2PreTrainedModel):
    family = NANOGPT


class GPTForSentenceEmbedding(SentenceEmbeddingHead, GPT2PreTrainedModel):
    family = NANOGPT
