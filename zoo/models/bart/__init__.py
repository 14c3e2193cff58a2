"""BART: transformers' ``bart`` model type (and the base that ``zoo.models.mbart`` builds on)."""

from ...family import register_family
from .config import BartConfig
from .family import BART
from .heads import (
    BartForSentenceEmbedding,
    BartForSequenceClassification,
    BartForTokenClassification,
    BartForTokenClassificationCRF,
)
from .model import (
    BartEncoderModel,
    BartForConditionalGeneration,
    BartModel,
    BartPostNormBlock,
    BartPreNormBlock,
    BartPreTrainedModel,
)
from .weights import BART_WEIGHT_MAP

register_family(
    BART,
    heads=(
        BartForSequenceClassification,
        BartForTokenClassification,
        BartForTokenClassificationCRF,
        BartForSentenceEmbedding,
    ),
)

__all__ = [
    "BART",
    "BART_WEIGHT_MAP",
    "BartConfig",
    "BartEncoderModel",
    "BartForConditionalGeneration",
    "BartForSentenceEmbedding",
    "BartForSequenceClassification",
    "BartForTokenClassification",
    "BartForTokenClassificationCRF",
    "BartModel",
    "BartPostNormBlock",
    "BartPreNormBlock",
    "BartPreTrainedModel",
]
