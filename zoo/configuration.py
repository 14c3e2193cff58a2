"""The configuration fields every zoo family shares.

A family config subclasses :class:`ZooConfig`, changes defaults, adds the few fields that are its
own, and says how to translate to and from the transformers config of its reference architecture
(``from_reference`` / ``to_reference``). Layers read only the names declared here, so a family is
mostly data.
"""

import copy
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from huggingface_hub.dataclasses import strict
from huggingface_hub.errors import StrictDataclassError
from transformers import PreTrainedConfig
from transformers.activations import ACT2FN

from .errors import ConfigError, ConfigValidationError
from .hf_internals import ROPE_INIT_FUNCTIONS

NORM_TYPES = ("layernorm", "rmsnorm")
MLP_TYPES = ("mlp", "gated")
# How a sentence-embedding head pools token states (``tasks.heads``): masked mean, first token, last token.
POOLING_MODES = ("mean", "cls", "last")
ROPE_TYPES = ("default", *ROPE_INIT_FUNCTIONS)
# The ranges ``ZooConfig.field_ranges`` names: (test of a value, what the message says is valid).
RANGES = {
    "count": (lambda value: value > 0, "a positive integer"),
    "probability": (lambda value: 0 <= value <= 1, "between 0 and 1"),
    "scale": (lambda value: math.isfinite(value) and value >= 0, "a finite number >= 0"),
    "positive": (lambda value: math.isfinite(value) and value > 0, "a positive finite number"),
}


class _RaisesConfigError(type):
    """``@strict`` runs the class validators after ``__init__`` and wraps what they raise in its own
    error types, so only the call that constructs a config can turn every refused value into one
    :class:`ConfigError` naming the class."""

    def __call__(cls, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except ConfigError:
            raise
        except StrictDataclassError as error:  # a heading over the validator's own error
            raise ConfigValidationError(f"{cls.__name__}: {error.__cause__ or error}") from None
        except ValueError as error:  # from __post_init__, ours or transformers'
            raise ConfigValidationError(f"{cls.__name__}: {error}") from None


@strict
class ZooConfig(PreTrainedConfig, metaclass=_RaisesConfigError):
    """Shared architecture fields (names follow transformers' Llama / BERT configs).

    Every value is checked when the config is constructed: a bad one raises :class:`ConfigError` naming
    the field, the value and the valid range, never an error deep inside the model build or forward.

    The fields the shared layers (``zoo.layers``) read, and nothing else; a default in parentheses is
    derived at construction, so the layers see ints, bools and floats only:

    ========================  ====================================  =================================
    field                     default                               read by
    ========================  ====================================  =================================
    hidden_size               768                                   every layer
    num_attention_heads       12                                    Attention, CrossAttention
    num_key_value_heads       (num_attention_heads)                 Attention, CrossAttention
    head_dim                  (hidden_size // num_attention_heads)  Attention, CrossAttention, rotary
    attention_bias            True                                  Attention (qkv), CrossAttention
    attention_out_bias        (attention_bias)                      Attention, CrossAttention (out)
    attention_scaling         (head_dim ** -0.5)                    Attention, CrossAttention
    attention_dropout         0.1                                   Attention, CrossAttention
    intermediate_size         (4 * hidden_size)                     build_mlp
    hidden_act                "gelu"                                build_mlp
    mlp_type                  "mlp" (or "gated")                    build_mlp
    mlp_bias                  True                                  build_mlp
    norm_type                 "layernorm" (or "rmsnorm")            build_norm
    norm_bias                 True (LayerNorm only)                 build_norm
    layer_norm_eps            1e-5                                  build_norm
    rope_parameters           None: no rotary positions             RotaryEmbedding
    max_position_embeddings   512                                   RotaryEmbedding
    ========================  ====================================  =================================

    Derived values are computed once, from the values given to the constructor: to change a size,
    build a new config (``from_dict`` with the change), not set the attribute.
    """

    # model_type values of transformers configs this family converts from (first: the default).
    reference_model_types: ClassVar[tuple[str, ...]] = ()
    # model_type values of zoo configs this class reads (a family's variants share fields).
    zoo_model_types: ClassVar[tuple[str, ...]] = ()
    # No remote code: tools that read ``config.auto_map`` unguarded (TRL's reference loader) find an
    # empty mapping (transformers' Auto classes test ``name in config.auto_map`` when it exists).
    auto_map: ClassVar[Mapping[str, str]] = MappingProxyType({})
    # The range (a key of ``RANGES``) each numeric field must lie in, None always allowed where the field
    # takes it; a family adds its own fields.
    field_ranges: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            **dict.fromkeys(
                (
                    "vocab_size",
                    "hidden_size",
                    "num_hidden_layers",
                    "num_attention_heads",
                    "num_key_value_heads",
                    "head_dim",
                    "intermediate_size",
                    "max_position_embeddings",
                ),
                "count",
            ),
            **dict.fromkeys(("hidden_dropout", "attention_dropout", "classifier_dropout"), "probability"),
            "initializer_range": "scale",
            "layer_norm_eps": "positive",
        }
    )
    # Fields whose declared None means "derived from other fields", in the order they are derived. A
    # rule gives None where its sources are invalid, so that validation names the source. ``to_dict``
    # writes a derived field as None while it holds its derived value: a config rebuilt with other sizes
    # (``from_pretrained`` / ``init_from_json`` overrides) derives it again.
    derived_fields: ClassVar[Mapping[str, Callable[["ZooConfig"], Any]]] = MappingProxyType(
        {
            "num_key_value_heads": lambda config: config.num_attention_heads,
            "head_dim": lambda config: (
                config.hidden_size // config.num_attention_heads
                if config.num_attention_heads > 0 and config.hidden_size % config.num_attention_heads == 0
                else None
            ),
            "attention_out_bias": lambda config: config.attention_bias,
            "attention_scaling": lambda config: (
                config.head_dim**-0.5 if config.head_dim is not None and config.head_dim > 0 else None
            ),
        }
    )

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
    attention_out_bias: bool | None = None  # default: attention_bias
    attention_scaling: float | None = None  # default: head_dim ** -0.5
    mlp_bias: bool = True
    norm_bias: bool = True
    rope_parameters: dict | None = None  # None: no rotary positions
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
        for field, derive in self.derived_fields.items():
            if getattr(self, field) is None:
                setattr(self, field, derive(self))
        if self.reference_model_type is None and self.reference_model_types:
            self.reference_model_type = self.reference_model_types[0]
        # Not a field: transformers turns num_labels into as many id2label entries, none for a negative one.
        num_labels = kwargs.get("num_labels")
        if num_labels is not None and (not isinstance(num_labels, int) or num_labels < 1):
            raise ValueError(f"num_labels must be a positive integer, got {num_labels!r}")
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Part of ``@strict`` validation: values that cannot build a model fail here, by field name."""
        for field, range_name in self.field_ranges.items():
            value = getattr(self, field)
            valid, description = RANGES[range_name]
            if value is not None and not valid(value):
                optional = self.__dataclass_fields__[field].default is None
                raise ValueError(
                    f"{field} must be {description}{' or None' if optional else ''}, got {value!r}"
                )
        if self.id2label is not None and not self.id2label:
            raise ValueError("num_labels must be a positive integer, got 0 (id2label is empty)")
        if self.head_dim is None and self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads}) unless head_dim is set"
            )
        if self.num_attention_heads % self.num_key_value_heads != 0:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        for field, value, valid in (
            ("norm_type", self.norm_type, NORM_TYPES),
            ("mlp_type", self.mlp_type, MLP_TYPES),
            ("hidden_act", self.hidden_act, tuple(ACT2FN)),
            ("pooling", self.pooling, POOLING_MODES),
        ):
            if value not in valid:
                raise ValueError(f"{field}={value!r} is not one of {', '.join(valid)}")

    def validate_rope(self):
        """transformers' RoPE checks, which only warn about an unknown type or a bad value and raise a
        ``KeyError`` (which ``@strict`` does not report) for a missing one, made errors."""
        rope = self.rope_parameters
        if rope:
            rope_type = rope.get("rope_type", "default")
            if rope_type not in ROPE_TYPES:
                raise ValueError(
                    f"rope_parameters['rope_type']={rope_type!r} is not one of {', '.join(ROPE_TYPES)}"
                )
            for key in ("rope_theta", "factor", "partial_rotary_factor"):
                value = rope.get(key)
                if (key == "rope_theta" or value is not None) and not (
                    isinstance(value, (int, float)) and math.isfinite(value) and value > 0
                ):
                    raise ValueError(
                        f"rope_parameters[{key!r}] must be a positive finite number, got {value!r}"
                    )
            rotary_dim = int(self.head_dim * rope.get("partial_rotary_factor", 1.0))
            if rotary_dim < 2 or rotary_dim % 2:
                raise ValueError(
                    f"rotary positions rotate pairs of dimensions: head_dim={self.head_dim} (times "
                    f"partial_rotary_factor) must give an even number >= 2, got {rotary_dim}"
                )
        try:
            super().validate_rope()
        except KeyError as error:
            raise ValueError(error.args[0]) from None

    def convert_rope_params_to_dict(self, **kwargs):
        """transformers' standardisation of rotary parameters, for a config that has them: it would give
        every config declaring ``rope_parameters`` a default RoPE, where None means no rotary positions."""
        if self.rope_parameters is None:
            return kwargs
        return super().convert_rope_params_to_dict(**kwargs)

    def get_text_config(self, decoder=None, encoder=None) -> "ZooConfig":
        """As transformers' except that an encoder-decoder's decoder config counts the decoder's layers
        (``num_decoder_layers``): ``generate`` sizes the self-attention cache by
        ``get_text_config(decoder=True).num_hidden_layers``, the encoder's count (transformers 5.24's own
        T5 fails with an ``IndexError`` when the two differ)."""
        config = super().get_text_config(decoder=decoder, encoder=encoder)
        layers = getattr(config, "num_decoder_layers", None)
        if decoder and not encoder and layers is not None and layers != config.num_hidden_layers:
            config = copy.deepcopy(config)
            config.num_hidden_layers = layers
        return config

    def to_dict(self) -> dict[str, Any]:
        """The config's fields; ``architectures`` as ``Zoo<Class>``: a zoo-layout ``config.json`` never names
        a class another library has (``transformers.LlamaForCausalLM`` would load it with random weights).
        A field of ``derived_fields`` that this class declares None and that holds its derived value is None."""
        data = super().to_dict()
        for field, derive in self.derived_fields.items():
            if self.__dataclass_fields__[field].default is None and data[field] == derive(self):
                data[field] = None
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
