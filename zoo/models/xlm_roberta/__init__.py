"""XLM-RoBERTa: RoBERTa's architecture (``zoo.models.bert``) under transformers' ``xlm-roberta`` names."""

from ...family import register_family
from .config import XLMRobertaConfig
from .family import XLM_ROBERTA
from .heads import (
    XLMRobertaForSentenceEmbedding,
    XLMRobertaForSequenceClassification,
    XLMRobertaForTokenClassification,
    XLMRobertaForTokenClassificationCRF,
)
from .model import (
    XLMRobertaForMaskedLM,
    XLMRobertaForSeq2Seq,
    XLMRobertaModel,
    XLMRobertaPreTrainedModel,
)
from .weights import XLM_ROBERTA_WEIGHT_MAP

register_family(
    XLM_ROBERTA,
    heads=(
        XLMRobertaForSequenceClassification,
        XLMRobertaForTokenClassification,
        XLMRobertaForTokenClassificationCRF,
        XLMRobertaForSentenceEmbedding,
    ),
)

__all__ = [
    "XLM_ROBERTA",
    "XLM_ROBERTA_WEIGHT_MAP",
    "XLMRobertaConfig",
    "XLMRobertaForMaskedLM",
    "XLMRobertaForSentenceEmbedding",
    "XLMRobertaForSeq2Seq",
    "XLMRobertaForSequenceClassification",
    "XLMRobertaForTokenClassification",
    "XLMRobertaForTokenClassificationCRF",
    "XLMRobertaModel",
    "XLMRobertaPreTrainedModel",
]
