from .config import T5Config
from .model import T5ForConditionalGeneration, T5Model, T5PreTrainedModel
from .weights import T5_WEIGHT_MAP

__all__ = ["T5_WEIGHT_MAP", "T5Config", "T5ForConditionalGeneration", "T5Model", "T5PreTrainedModel"]
