from ...family import register_family
from .config import Gemma3Config
from .family import GEMMA3
from .heads import (
    Gemma3ForSentenceEmbedding,
    Gemma3ForSequenceClassification,
    Gemma3ForTokenClassification,
    Gemma3ForTokenClassificationCRF,
)
from .model import Gemma3Attention, Gemma3DecoderBlock, Gemma3ForCausalLM, Gemma3Model, Gemma3PreTrainedModel
from .weights import GEMMA3_WEIGHT_MAP

register_family(
    GEMMA3,
    heads=(
        Gemma3ForSequenceClassification,
        Gemma3ForTokenClassification,
        Gemma3ForTokenClassificationCRF,
        Gemma3ForSentenceEmbedding,
    ),
)

__all__ = [
    "GEMMA3",
    "GEMMA3_WEIGHT_MAP",
    "Gemma3Attention",
    "Gemma3Config",
    "Gemma3DecoderBlock",
    "Gemma3ForCausalLM",
    "Gemma3ForSentenceEmbedding",
    "Gemma3ForSequenceClassification",
    "Gemma3ForTokenClassification",
    "Gemma3ForTokenClassificationCRF",
    "Gemma3Model",
    "Gemma3PreTrainedModel",
]
