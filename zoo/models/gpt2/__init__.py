from ...family import register_family
from .config import GPT2Config
from .family import GPT2
from .heads import (
    GPT2ForSentenceEmbedding,
    GPT2ForSequenceClassification,
    GPT2ForTokenClassification,
    GPT2ForTokenClassificationCRF,
)
from .model import GPT2ForCausalLM, GPT2Model, GPT2PreTrainedModel
from .weights import GPT2_WEIGHT_MAP

register_family(
    GPT2,
    heads=(
        GPT2ForSequenceClassification,
        GPT2ForTokenClassification,
        GPT2ForTokenClassificationCRF,
        GPT2ForSentenceEmbedding,
    ),
)

__all__ = [
    "GPT2",
    "GPT2_WEIGHT_MAP",
    "GPT2Config",
    "GPT2ForCausalLM",
    "GPT2ForSentenceEmbedding",
    "GPT2ForSequenceClassification",
    "GPT2ForTokenClassification",
    "GPT2ForTokenClassificationCRF",
    "GPT2Model",
    "GPT2PreTrainedModel",
]
