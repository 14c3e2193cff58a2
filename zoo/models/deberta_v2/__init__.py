"""DeBERTa-v2 / v3: BERT's post-LN encoder with disentangled (content / relative-position) attention."""

from ...family import register_family
from .config import DebertaV2Config
from .family import DEBERTA_V2
from .heads import (
    DebertaV2ForSentenceEmbedding,
    DebertaV2ForSequenceClassification,
    DebertaV2ForTokenClassification,
    DebertaV2ForTokenClassificationCRF,
)
from .model import (
    ContextPooler,
    DebertaV2ForMaskedLM,
    DebertaV2Model,
    DebertaV2PreTrainedModel,
    DisentangledAttention,
    DisentangledEncoderBlock,
)
from .weights import DEBERTA_V2_WEIGHT_MAP

register_family(
    DEBERTA_V2,
    heads=(
        DebertaV2ForSequenceClassification,
        DebertaV2ForTokenClassification,
        DebertaV2ForTokenClassificationCRF,
        DebertaV2ForSentenceEmbedding,
    ),
)

__all__ = [
    "DEBERTA_V2",
    "DEBERTA_V2_WEIGHT_MAP",
    "ContextPooler",
    "DebertaV2Config",
    "DebertaV2ForMaskedLM",
    "DebertaV2ForSentenceEmbedding",
    "DebertaV2ForSequenceClassification",
    "DebertaV2ForTokenClassification",
    "DebertaV2ForTokenClassificationCRF",
    "DebertaV2Model",
    "DebertaV2PreTrainedModel",
    "DisentangledAttention",
    "DisentangledEncoderBlock",
]
