from .config import GLMConfig
from .model import GLMForSeq2Seq, GLMModel, GLMPreTrainedModel, blank_infilling_inputs, blank_infilling_mask
from .weights import GLM_WEIGHT_MAP

__all__ = [
    "GLM_WEIGHT_MAP",
    "GLMConfig",
    "GLMForSeq2Seq",
    "GLMModel",
    "GLMPreTrainedModel",
    "blank_infilling_inputs",
    "blank_infilling_mask",
]
