from ...family import register_family
from .config import GPTConfig
from .family import NANOGPT
from .heads import (
    GPTForSentenceEmbedding,
    GPTForSequenceClassification,
    GPTForTokenClassification,
    GPTForTokenClassificationCRF,
)
from .model import GPT, GPTModel
from .weights import NANOGPT_WEIGHT_MAP

register_family(
    NANOGPT,
    heads=(
        GPTForSequenceClassification,
        GPTForTokenClassification,
        GPTForTokenClassificationCRF,
        GPTForSentenceEmbedding,
    ),
)

__all__ = [
    "GPT",
    "NANOGPT",
    "NANOGPT_WEIGHT_MAP",
    "GPTConfig",
    "GPTForSentenceEmbedding",
    "GPTForSequenceClassification",
    "GPTForTokenClassification",
    "GPTForTokenClassificationCRF",
    "GPTModel",
]
