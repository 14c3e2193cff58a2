"""The task heads as the tasks see them: lookups over the family registry (``zoo.family``).

``head_class(family, head)`` gives the model class for a family ("bert", "roberta", "gpt2", "llama",
"gpt", "t5", "glm", ...) and a head kind ("causal-lm", "masked-lm", "seq2seq", "sequence-labeling",
"sequence-labeling-crf", "sequence-classification", "embedding"); ``supported_heads(family)`` lists a
family's kinds and ``family_of(config_or_model)`` names the family of a zoo config or model.

The head classes live in their families' folders (``zoo/models/<family>/heads.py``) and are registered
with ``zoo.load`` and the transformers Auto classes when ``zoo`` is imported; this module gives them by
name too (``tasks.heads.LlamaForTokenClassification``).

``Head.from_pretrained(checkpoint)`` loads a base, masked-LM or causal-LM checkpoint (zoo or
transformers layout): the backbone strictly, the head's new layers initialised (and logged), the
checkpoint's other heads ignored (and logged).
"""

from zoo.family import HEAD_KINDS, UnsupportedHeadError, family_of, head_class, head_classes, supported_heads
from zoo.heads import (
    CRF,
    HeadMixin,
    SentenceEmbeddingHead,
    SentenceEmbeddingOutput,
    SequenceClassificationHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
)
from zoo.models.bert import BertForSeq2Seq, RobertaForSeq2Seq
from zoo.models.t5 import T5EncoderModel


def __getattr__(name: str):
    classes = head_classes()
    if name in classes:
        return classes[name]
    raise AttributeError(f"module 'tasks.heads' has no attribute {name!r}")


__all__ = [
    "BertForSeq2Seq",
    "CRF",
    "HEAD_KINDS",
    "HeadMixin",
    "RobertaForSeq2Seq",
    "SentenceEmbeddingHead",
    "SentenceEmbeddingOutput",
    "SequenceClassificationHead",
    "T5EncoderModel",
    "TokenClassificationCRFHead",
    "TokenClassificationHead",
    "UnsupportedHeadError",
    "family_of",
    "head_class",
    "head_classes",
    "supported_heads",
]
