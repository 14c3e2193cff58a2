"""mBART with each task head (as BART's: ``zoo.models.bart.heads``)."""

from ...heads import SentenceEmbeddingHead, TokenClassificationCRFHead, TokenClassificationHead
from ..bart.heads import EosClassificationHead
from .family import MBART
from .model import MBartModel, MBartPreTrainedModel


class MBartForSequenceClassification(EosClassificationHead, MBartPreTrainedModel):
    family = MBART
    base_model_class = MBartModel


class MBartForTokenClassification(TokenClassificationHead, MBartPreTrainedModel):
    family = MBART


class MBartForTokenClassificationCRF(TokenClassificationCRFHead, MBartPreTrainedModel):
    family = MBART


class MBartForSentenceEmbedding(SentenceEmbeddingHead, MBartPreTrainedModel):
    family = MBART
