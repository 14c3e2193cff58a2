from ...family import register_family
from .config import BertConfig, RobertaConfig
from .family import BERT, ROBERTA
from .heads import (
    BertForSentenceEmbedding,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertForTokenClassificationCRF,
    RobertaForSentenceEmbedding,
    RobertaForSequenceClassification,
    RobertaForTokenClassification,
    RobertaForTokenClassificationCRF,
)
from .model import BertForMaskedLM, BertModel, BertPreTrainedModel, RobertaForMaskedLM, RobertaModel
from .unilm import BertForSeq2Seq, RobertaForSeq2Seq
from .weights import BERT_WEIGHT_MAP, ROBERTA_WEIGHT_MAP

register_family(
    BERT,
    heads=(
        BertForSequenceClassification,
        BertForTokenClassification,
        BertForTokenClassificationCRF,
        BertForSentenceEmbedding,
    ),
)
register_family(
    ROBERTA,
    heads=(
        RobertaForSequenceClassification,
        RobertaForTokenClassification,
        RobertaForTokenClassificationCRF,
        RobertaForSentenceEmbedding,
    ),
)

__all__ = [
    "BERT",
    "BERT_WEIGHT_MAP",
    "ROBERTA",
    "ROBERTA_WEIGHT_MAP",
    "BertConfig",
    "BertForMaskedLM",
    "BertForSentenceEmbedding",
    "BertForSeq2Seq",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertForTokenClassificationCRF",
    "BertModel",
    "BertPreTrainedModel",
    "RobertaConfig",
    "RobertaForMaskedLM",
    "RobertaForSentenceEmbedding",
    "RobertaForSeq2Seq",
    "RobertaForSequenceClassification",
    "RobertaForTokenClassification",
    "RobertaForTokenClassificationCRF",
    "RobertaModel",
]
