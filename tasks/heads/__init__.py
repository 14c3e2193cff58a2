"""Task heads written once and composed with every zoo family.

``head_class(family, head)`` gives the model class for a family ("bert", "roberta", "gpt2", "llama",
"gpt", "t5", "glm") and a head kind ("causal-lm", "masked-lm", "seq2seq", "sequence-labeling",
"sequence-labeling-crf", "sequence-classification", "embedding"); ``supported_heads(family)`` lists a
family's kinds and ``family_of(config_or_model)`` names the family of a zoo config or model.

The composed classes (``BertForSequenceClassification``, ``LlamaForTokenClassification``,
``GPT2ForTokenClassificationCRF``, ``T5ForSentenceEmbedding``, ...) are attributes of this module, so
they import and pickle by name. Importing it registers them with ``zoo.load`` (by architecture) and
with ``AutoModelForSequenceClassification`` / ``AutoModelForTokenClassification``.

``Head.from_pretrained(checkpoint)`` loads a base, masked-LM or causal-LM checkpoint (zoo or
transformers layout): the backbone strictly, the head's new layers initialised (and logged), the
checkpoint's other heads ignored (and logged).
"""

from .base import Family, HeadMixin
from .classification import SequenceClassificationHead
from .compose import (
    COMPOSED,
    FAMILIES,
    HEAD_KINDS,
    T5EncoderModel,
    UnsupportedHeadError,
    family_of,
    head_class,
    register_heads,
    supported_heads,
)
from .crf import CRF
from .embedding import SentenceEmbeddingHead, SentenceEmbeddingOutput
from .labeling import TokenClassificationCRFHead, TokenClassificationHead
from .unilm import BertForSeq2Seq, RobertaForSeq2Seq  # registered here: zoo.load finds their checkpoints

globals().update({cls.__name__: cls for cls in COMPOSED.values()})
register_heads()

__all__ = [
    "BertForSeq2Seq",
    "RobertaForSeq2Seq",
    "CRF",
    "COMPOSED",
    "FAMILIES",
    "HEAD_KINDS",
    "Family",
    "HeadMixin",
    "SentenceEmbeddingHead",
    "SentenceEmbeddingOutput",
    "SequenceClassificationHead",
    "T5EncoderModel",
    "TokenClassificationCRFHead",
    "TokenClassificationHead",
    "UnsupportedHeadError",
    "family_of",
    "head_class",
    "register_heads",
    "supported_heads",
    *sorted(cls.__name__ for cls in COMPOSED.values()),
]
