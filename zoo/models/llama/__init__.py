from ...family import register_family
from .config import LlamaConfig
from .family import LLAMA
from .heads import (
    LlamaForSentenceEmbedding,
    LlamaForSequenceClassification,
    LlamaForTokenClassification,
    LlamaForTokenClassificationCRF,
)
from .model import LlamaForCausalLM, LlamaModel, LlamaPreTrainedModel
from .weights import LLAMA_WEIGHT_MAP

register_family(
    LLAMA,
    heads=(
        LlamaForSequenceClassification,
        LlamaForTokenClassification,
        LlamaForTokenClassificationCRF,
        LlamaForSentenceEmbedding,
    ),
)

__all__ = [
    "LLAMA",
    "LLAMA_WEIGHT_MAP",
    "LlamaConfig",
    "LlamaForCausalLM",
    "LlamaForSentenceEmbedding",
    "LlamaForSequenceClassification",
    "LlamaForTokenClassification",
    "LlamaForTokenClassificationCRF",
    "LlamaModel",
    "LlamaPreTrainedModel",
]
