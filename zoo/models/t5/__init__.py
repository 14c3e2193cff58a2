from ...family import register_family
from .config import T5Config
from .encoder import T5EncoderModel
from .family import T5
from .heads import (
    T5ForSentenceEmbedding,
    T5ForSequenceClassification,
    T5ForTokenClassification,
    T5ForTokenClassificationCRF,
)
from .model import T5ForConditionalGeneration, T5Model, T5PreTrainedModel
from .weights import T5_WEIGHT_MAP

register_family(
    T5,
    heads=(
        T5ForSequenceClassification,
        T5ForTokenClassification,
        T5ForTokenClassificationCRF,
        T5ForSentenceEmbedding,
    ),
)

__all__ = [
    "T5",
    "T5_WEIGHT_MAP",
    "T5Config",
    "T5EncoderModel",
    "T5ForConditionalGeneration",
    "T5ForSentenceEmbedding",
    "T5ForSequenceClassification",
    "T5ForTokenClassification",
    "T5ForTokenClassificationCRF",
    "T5Model",
    "T5PreTrainedModel",
]
