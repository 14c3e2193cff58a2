from ...family import register_family
from .config import Gemma2Config
from .family import GEMMA2
from .heads import (
    Gemma2ForSentenceEmbedding,
    Gemma2ForSequenceClassification,
    Gemma2ForTokenClassification,
    Gemma2ForTokenClassificationCRF,
)
from .model import (
    Gemma2Attention,
    Gemma2DecoderBlock,
    Gemma2ForCausalLM,
    Gemma2Model,
    Gemma2PreTrainedModel,
    GemmaCausalLMMixin,
    GemmaRMSNorm,
    ScaledEmbedding,
)
from .weights import GEMMA2_WEIGHT_MAP

register_family(
    GEMMA2,
    heads=(
        Gemma2ForSequenceClassification,
        Gemma2ForTokenClassification,
        Gemma2ForTokenClassificationCRF,
        Gemma2ForSentenceEmbedding,
    ),
)

__all__ = [
    "GEMMA2",
    "GEMMA2_WEIGHT_MAP",
    "Gemma2Attention",
    "Gemma2Config",
    "Gemma2DecoderBlock",
    "Gemma2ForCausalLM",
    "Gemma2ForSentenceEmbedding",
    "Gemma2ForSequenceClassification",
    "Gemma2ForTokenClassification",
    "Gemma2ForTokenClassificationCRF",
    "Gemma2Model",
    "Gemma2PreTrainedModel",
    "GemmaCausalLMMixin",
    "GemmaRMSNorm",
    "ScaledEmbedding",
]
