"""zoo: natively written transformer families that are ordinary transformers models.

Importing ``zoo`` registers every family (``zoo.models``, one folder each) with ``zoo.load``,
``AutoConfig`` and the matching transformers Auto model classes, so
``AutoModelForCausalLM.from_pretrained(zoo_checkpoint)`` works. Every registered class is an
attribute of this module (``zoo.LlamaForTokenClassification``).
"""

from .adapters import AdapterConversionError, load_adapter, save_adapter
from .configuration import ZooConfig
from .convert import convert_checkpoint
from .errors import (
    CheckpointNotFoundError,
    ConfigError,
    ConfigValidationError,
    CorruptCheckpointError,
    ModelInputError,
    PackingError,
    UnknownNameError,
    UnsupportedCacheError,
    UnsupportedGenerationError,
    WeightsMismatchError,
    ZooError,
)
from .family import (
    CatalogEntry,
    Family,
    FamilyDeclarationError,
    UnsupportedHeadError,
    families,
    family_of,
    get_family,
    head_class,
    register_family,
    supported_heads,
)
from .hf_internals import TESTED_TRANSFORMERS, warn_if_untested
from .modeling_base import LoadReport, ZooPreTrainedModel
from .models.bert import (
    BertConfig,
    BertForMaskedLM,
    BertModel,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaModel,
)
from .models.glm import GLMConfig, GLMForSeq2Seq, GLMModel
from .models.gpt2 import GPT2Config, GPT2ForCausalLM, GPT2Model
from .models.llama import LlamaConfig, LlamaForCausalLM, LlamaModel
from .models.nanogpt import GPT, GPTConfig
from .models.t5 import T5Config, T5ForConditionalGeneration, T5Model
from .registry import (
    ConfigBuilder,
    config_builders,
    register_class,
    register_config_builder,
    registered_classes,
    zoo_class_for,
)
from .tokenization import MissingDependencyError, load_tokenizer, tiktoken_tokenizer, train_bpe_tokenizer
from .wrappers import CausalLMWrapper, wrap

__version__ = "0.1.0"

warn_if_untested()  # once, naming the tested range, when transformers is outside it


def load(name_or_path, **kwargs):
    """Load any checkpoint the zoo understands with the class its ``config.json`` calls for.

    Zoo layouts, transformers layouts of every family, and configs a registered config builder maps.
    """
    from .loading import read_config_dict, resolve_checkpoint

    keys = ("revision", "cache_dir", "token", "local_files_only")
    directory = resolve_checkpoint(name_or_path, **{k: kwargs[k] for k in keys if k in kwargs})
    model_class = zoo_class_for(read_config_dict(directory), source=str(directory / "config.json"))
    return model_class.from_pretrained(directory, **{k: v for k, v in kwargs.items() if k not in keys})


def __getattr__(name: str):
    """Every registered class by name: the families' configs, models and task heads
    (``zoo.Qwen3Config``, ``zoo.GPT2ForTokenClassification``)."""
    classes = {f.config_class.__name__: f.config_class for f in families().values()} | registered_classes()
    if name in classes:
        return classes[name]
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


__all__ = [
    "CatalogEntry",
    "Family",
    "FamilyDeclarationError",
    "UnsupportedHeadError",
    "families",
    "family_of",
    "get_family",
    "head_class",
    "register_family",
    "supported_heads",
    "AdapterConversionError",
    "load_adapter",
    "save_adapter",
    "BertConfig",
    "BertForMaskedLM",
    "BertModel",
    "CheckpointNotFoundError",
    "ConfigError",
    "ConfigValidationError",
    "ModelInputError",
    "CorruptCheckpointError",
    "GPT2Config",
    "GPT2ForCausalLM",
    "GPT2Model",
    "LlamaConfig",
    "LlamaForCausalLM",
    "LlamaModel",
    "LoadReport",
    "RobertaConfig",
    "RobertaForMaskedLM",
    "RobertaModel",
    "PackingError",
    "UnknownNameError",
    "UnsupportedCacheError",
    "UnsupportedGenerationError",
    "WeightsMismatchError",
    "ZooConfig",
    "ZooError",
    "ZooPreTrainedModel",
    "convert_checkpoint",
    "ConfigBuilder",
    "config_builders",
    "load",
    "register_class",
    "register_config_builder",
    "registered_classes",
    "zoo_class_for",
    "GLMConfig",
    "GLMForSeq2Seq",
    "GLMModel",
    "GPT",
    "GPTConfig",
    "CausalLMWrapper",
    "MissingDependencyError",
    "load_tokenizer",
    "tiktoken_tokenizer",
    "train_bpe_tokenizer",
    "wrap",
    "T5Config",
    "T5ForConditionalGeneration",
    "T5Model",
    "TESTED_TRANSFORMERS",
]
