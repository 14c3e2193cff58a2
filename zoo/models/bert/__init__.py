from .config import BertConfig, RobertaConfig
from .model import BertForMaskedLM, BertModel, BertPreTrainedModel, RobertaForMaskedLM, RobertaModel
from .weights import BERT_WEIGHT_MAP, ROBERTA_WEIGHT_MAP

__all__ = [
    "BERT_WEIGHT_MAP",
    "ROBERTA_WEIGHT_MAP",
    "BertConfig",
    "BertForMaskedLM",
    "BertModel",
    "BertPreTrainedModel",
    "RobertaConfig",
    "RobertaForMaskedLM",
    "RobertaModel",
]
