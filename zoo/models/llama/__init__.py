from .config import LlamaConfig
from .model import LlamaForCausalLM, LlamaModel, LlamaPreTrainedModel
from .weights import LLAMA_WEIGHT_MAP

__all__ = ["LLAMA_WEIGHT_MAP", "LlamaConfig", "LlamaForCausalLM", "LlamaModel", "LlamaPreTrainedModel"]
