from .config import GPTConfig
from .model import GPT
from .weights import NANOGPT_WEIGHT_MAP

__all__ = ["GPT", "NANOGPT_WEIGHT_MAP", "GPTConfig"]
