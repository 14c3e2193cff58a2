from .config import GPT2Config
from .model import GPT2ForCausalLM, GPT2Model, GPT2PreTrainedModel
from .weights import GPT2_WEIGHT_MAP

__all__ = ["GPT2_WEIGHT_MAP", "GPT2Config", "GPT2ForCausalLM", "GPT2Model", "GPT2PreTrainedModel"]
