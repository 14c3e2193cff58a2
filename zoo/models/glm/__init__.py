from ...family import register_family
from .config import GLMConfig
from .family import GLM
from .heads import (
    GLMForSentenceEmbedding,
    GLMForSequenceClassification,
    GLMForTokenClassification,
    GLMForTokenClassificationCRF,
)
from .model import GLMForSeq2Seq, GLMModel, GLMPreTrainedModel, blank_infilling_inputs, blank_infilling_mask
from .weights import GLM_WEIGHT_MAP

register_family(
    GLM,
    heads=(
        GLMForSequenceClassification,
        GLMForTokenClassification,
        GLMForTokenClassificationCRF,
        GLMForSentenceEmbedding,
    ),
)

__all__ = [
    "GLM",
    "GLM_WEIGHT_MAP",
    "GLMConfig",
    "GLMForSentenceEmbedding",
    "GLMForSeq2Seq",
    "GLMForSequenceClassification",
    "GLMForTokenClassification",
    "GLMForTokenClassificationCRF",
    "GLMModel",
    "GLMPreTrainedModel",
    "blank_infilling_inputs",
    "blank_infilling_mask",
]
