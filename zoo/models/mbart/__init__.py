"""mBART: transformers' ``mbart`` model type, BART's code (``zoo.models.bart``) as a pre-LN variant."""

from ...family import register_family
from .config import MBartConfig
from .family import MBART
from .heads import (
    MBartForSentenceEmbedding,
    MBartForSequenceClassification,
    MBartForTokenClassification,
    MBartForTokenClassificationCRF,
)
from .model import MBartEncoderModel, MBartForConditionalGeneration, MBartModel, MBartPreTrainedModel
from .weights import MBART_WEIGHT_MAP

register_family(
    MBART,
    heads=(
        MBartForSequenceClassification,
        MBartForTokenClassification,
        MBartForTokenClassificationCRF,
        MBartForSentenceEmbedding,
    ),
)

__all__ = [
    "MBART",
    "MBART_WEIGHT_MAP",
    "MBartConfig",
    "MBartEncoderModel",
    "MBartForConditionalGeneration",
    "MBartForSentenceEmbedding",
    "MBartForSequenceClassification",
    "MBartForTokenClassification",
    "MBartForTokenClassificationCRF",
    "MBartModel",
    "MBartPreTrainedModel",
]
