"""zoo: natively written transformer families that are ordinary transformers models.

Importing ``zoo`` registers every family with ``AutoConfig`` and the matching transformers Auto
model classes, so ``AutoModelForCausalLM.from_pretrained(zoo_checkpoint)`` works.
"""

from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

from .configuration import ZooConfig
from .convert import convert_checkpoint
from .errors import (
    CheckpointNotFoundError,
    ConfigError,
    CorruptCheckpointError,
    UnknownNameError,
    WeightsMismatchError,
    ZooError,
)
from .modeling_base import LoadReport, ZooPreTrainedModel
from .models.bert import (
    BertConfig,
    BertForMaskedLM,
    BertModel,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaModel,
)
from .models.gpt2 import GPT2Config, GPT2ForCausalLM, GPT2Model
from .registry import register_class, registered_classes, zoo_class_for

__version__ = "0.1.0"

register_class(GPT2Model, AutoModel)
register_class(GPT2ForCausalLM, AutoModelForCausalLM)
register_class(BertModel, AutoModel)
register_class(BertForMaskedLM, AutoModelForMaskedLM, reference_aliases=("BertForPreTraining",))
register_class(RobertaModel, AutoModel)
register_class(RobertaForMaskedLM, AutoModelForMaskedLM)

__all__ = [
    "BertConfig",
    "BertForMaskedLM",
    "BertModel",
    "CheckpointNotFoundError",
    "ConfigError",
    "CorruptCheckpointError",
    "GPT2Config",
    "GPT2ForCausalLM",
    "GPT2Model",
    "LoadReport",
    "RobertaConfig",
    "RobertaForMaskedLM",
    "RobertaModel",
    "UnknownNameError",
    "WeightsMismatchError",
    "ZooConfig",
    "ZooError",
    "ZooPreTrainedModel",
    "convert_checkpoint",
    "register_class",
    "registered_classes",
    "zoo_class_for",
]
