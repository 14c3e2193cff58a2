from ...family import register_family
from .config import Phi3Config
from .family import PHI3
from .heads import (
    Phi3ForSentenceEmbedding,
    Phi3ForSequenceClassification,
    Phi3ForTokenClassification,
    Phi3ForTokenClassificationCRF,
)
from .model import Phi3ForCausalLM, Phi3Model, Phi3PreTrainedModel
from .weights import PHI3_WEIGHT_MAP

register_family(
    PHI3,
    heads=(
        Phi3ForSequenceClassification,
        Phi3ForTokenClassification,
        Phi3ForTokenClassificationCRF,
        Phi3ForSentenceEmbedding,
    ),
)

__all__ = [
    "PHI3",
    "PHI3_WEIGHT_MAP",
    "Phi3Config",
    "Phi3ForCausalLM",
    "Phi3ForSentenceEmbedding",
    "Phi3ForSequenceClassification",
    "Phi3ForTokenClassification",
    "Phi3ForTokenClassificationCRF",
    "Phi3Model",
    "Phi3PreTrainedModel",
]
