from ...family import register_family
from .config import Qwen3Config
from .family import QWEN3
from .heads import (
    Qwen3ForSentenceEmbedding,
    Qwen3ForSequenceClassification,
    Qwen3ForTokenClassification,
    Qwen3ForTokenClassificationCRF,
)
from .model import Qwen3Attention, Qwen3DecoderBlock, Qwen3ForCausalLM, Qwen3Model, Qwen3PreTrainedModel
from .weights import QWEN3_WEIGHT_MAP

register_family(
    QWEN3,
    heads=(
        Qwen3ForSequenceClassification,
        Qwen3ForTokenClassification,
        Qwen3ForTokenClassificationCRF,
        Qwen3ForSentenceEmbedding,
    ),
)

__all__ = [
    "QWEN3",
    "QWEN3_WEIGHT_MAP",
    "Qwen3Attention",
    "Qwen3Config",
    "Qwen3DecoderBlock",
    "Qwen3ForCausalLM",
    "Qwen3ForSentenceEmbedding",
    "Qwen3ForSequenceClassification",
    "Qwen3ForTokenClassification",
    "Qwen3ForTokenClassificationCRF",
    "Qwen3Model",
    "Qwen3PreTrainedModel",
]
