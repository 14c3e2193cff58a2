"""ModernBERT (``answerdotai/ModernBERT-*``): transformers' ``modernbert`` checkpoints, read and written."""

from ...family import register_family
from .config import ModernBertConfig
from .family import MODERNBERT
from .heads import (
    ModernBertForSentenceEmbedding,
    ModernBertForSequenceClassification,
    ModernBertForTokenClassification,
    ModernBertForTokenClassificationCRF,
)
from .model import (
    ModernBertBlock,
    ModernBertForMaskedLM,
    ModernBertMLP,
    ModernBertModel,
    ModernBertPredictionHead,
    ModernBertPreTrainedModel,
)
from .weights import MODERNBERT_WEIGHT_MAP

register_family(
    MODERNBERT,
    heads=(
        ModernBertForSequenceClassification,
        ModernBertForTokenClassification,
        ModernBertForTokenClassificationCRF,
        ModernBertForSentenceEmbedding,
    ),
)

__all__ = [
    "MODERNBERT",
    "MODERNBERT_WEIGHT_MAP",
    "ModernBertBlock",
    "ModernBertConfig",
    "ModernBertForMaskedLM",
    "ModernBertForSentenceEmbedding",
    "ModernBertForSequenceClassification",
    "ModernBertForTokenClassification",
    "ModernBertForTokenClassificationCRF",
    "ModernBertMLP",
    "ModernBertModel",
    "ModernBertPredictionHead",
    "ModernBertPreTrainedModel",
]
