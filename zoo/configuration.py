"""The configuration fields every zoo family shares.

A family config subclasses :class:`ZooConfig`, changes defaults, adds the few fields that are its
own, and says how to translate to and from the transformers config of its reference architecture
(``from_reference`` / ``to_reference``). Layers read only the names declared here, so a family is
mostly data.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.activations import ACT2FN

NORM_TYPES = ("layernorm", "rmsnorm")
MLP_TYPES = ("mlp", "gated")
# How a sentence-embedding head pools token states (``tasks.heads``): masked mean, first token, last token.
POOLING_MODES = ("mean", "cls", "last")


@strict
class ZooConfig(PreTrainedConfig):
    """Shared architecture fields (names follow transformers' Llama / BERT configs)."""

    # model_type values of transformers configs this family converts from (first: the default).
    reference_model_types: ClassVar[tuple[str, ...]] = ()
    # model_type values of zoo configs this class reads (a family's variants share fields).
    zoo_model_types: ClassVar[tuple[str, ...]] = ()
    # No remote code: tools that read ``config.auto_map`` unguarded (TRL's reference loader) find an
    # empty mapping (transformers' Auto classes test ``name in config.auto_map`` when it exists).
    auto_map: ClassVar[Mapping[str, str]] = MappingProxyType({})

    vocab_size: int = 32000
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_key_value_heads: int | None = None
    head_dim: int | None = None
    intermediate_size: int | None = None  # default: 4 * hidden_size
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    norm_type: str = "layernorm"
    mlp_type: str = "mlp"
    layer_norm_eps: float = 1e-5
    attention_bias: bool = True
    mlp_bias: bool = True
    hidden_dropout: float | int = 0.1
    attention_dropout: float | int = 0.1
    initializer_range: float = 0.02
    use_cache: bool = True
    tie_word_embeddings: bool = True
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    # Which transformers layout ``save_reference`` writes (one of ``reference_model_types``).
    reference_model_type: str | None = None
    # Task heads (``tasks.heads``): dropout before the classifier (None: hidden_dropout), and the
    # sentence-embedding head's pooling and L2 normalisation, saved with the head's checkpoint.
    classifier_dropout: float | int | None = None
    pooling: str = "mean"
    normalize_embeddings: bool = False

    def __post_init__(self, **kwargs):
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.hidden_size
        if self.reference_model_type is None and self.reference_model_types:
            self.reference_model_type = self.reference_model_types[0]
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Part of ``@strict`` validation: shapes that cannot build a model fail here, by field name."""
        if self.head_dim is None and self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads}) unless head_dim is set"
            )
        kv_heads = self.num_key_value_heads or self.num_attention_heads
        if self.num_attention_heads % kv_heads != 0:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({kv_heads})"
            )
        for field, value, valid in (
            ("norm_type", self.norm_type, NORM_TYPES),
            ("mlp_type", self.mlp_type, MLP_TYPES),
            ("hidden_act", self.hidden_act, tuple(ACT2FN)),
            ("pooling", self.pooling, POOLING_MODES),
        ):
            if value not in valid:
                raise ValueError(f"{field}={value!r} is not one of {', '.join(valid)}")
        for field in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
        ):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field} must be positive, got {getattr(self, field)}")

    def to_dict(self) -> dict[str, Any]:
        """The config's fields; ``architectures`` as ``Zoo<Class>``: a zoo-layout ``config.json`` never names
        a class another library has (``transformers.LlamaForCausalLM`` would load it with random weights)."""
        data = super().to_dict()
        if data.get("architectures"):
            data["architectures"] = [zoo_architecture(name) for name in data["architectures"]]
        return data

    @classmethod
    def from_reference(cls, reference: dict[str, Any]) -> "ZooConfig":
        """Build from the ``config.json`` dict of the transformers reference architecture."""
        raise NotImplementedError(f"{cls.__name__} does not convert from a transformers config")

    def to_reference(self, architecture: str) -> PreTrainedConfig:
        """The transformers config that loads this model's exported weights as ``architecture``."""
        raise NotImplementedError(f"{type(self).__name__} does not convert to a transformers config")


def zoo_architecture(class_name: str) -> str:
    """The name a zoo-layout ``config.json`` gives a zoo class: ``LlamaForCausalLM`` -> ``ZooLlamaForCausalLM``."""
    return (
        class_name if class_name.startswith(ZOO_ARCHITECTURE_PREFIX) else ZOO_ARCHITECTURE_PREFIX + class_name
    )


ZOO_ARCHITECTURE_PREFIX = "Zoo"


def shared_token_fields(reference: dict[str, Any]) -> dict[str, Any]:
    """Fields every reference config and zoo config name alike."""
    keys = (
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
        "tie_word_embeddings",
        "use_cache",
        "initializer_range",
        # what a task head's checkpoint (e.g. BertForSequenceClassification) says about its labels
        "id2label",
        "label2id",
        "problem_type",
    )
    return {key: reference[key] for key in keys if key in reference}
