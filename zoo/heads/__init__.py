"""Task heads written once for every family: the kinds' mixins, the CRF and the pooling helpers.

A family's ``heads.py`` names one class per kind, ``class BertForTokenClassification(TokenClassificationHead,
BertPreTrainedModel): family = BERT``; ``zoo.family.register_family`` registers them with ``zoo.load``
and the transformers Auto classes.
"""

from .base import HeadMixin, gather_rows, last_index, last_token_pool, mean_pool
from .classification import SequenceClassificationHead
from .crf import CRF
from .embedding import SentenceEmbeddingHead, SentenceEmbeddingOutput
from .labeling import TokenClassificationCRFHead, TokenClassificationHead

__all__ = [
    "CRF",
    "HeadMixin",
    "SentenceEmbeddingHead",
    "SentenceEmbeddingOutput",
    "SequenceClassificationHead",
    "TokenClassificationCRFHead",
    "TokenClassificationHead",
    "gather_rows",
    "last_index",
    "last_token_pool",
    "mean_pool",
]
