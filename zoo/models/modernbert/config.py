"""ModernBERT configuration: a pre-LayerNorm encoder with rotary positions, GeGLU and local / global attention.

ModernBERT (Warner et al., 2024) differs from BERT by data the shared layers already read (pre-LN order,
LayerNorm without bias, no projection biases, a gated MLP, rotary positions) plus three facts of its own:

* ``layer_types``: each layer attends globally ("full_attention") or within a band ("sliding_attention")
  of ``local_attention // 2`` keys on either side (``sliding_window``); by default every
  ``global_attn_every_n_layers``-th layer, from the first, is global;
* the global layers rotate by ``rope_parameters["rope_theta"]`` (transformers' ``global_rope_theta``), the
  local ones by ``local_rope_theta``;
* the heads' transform (dense + ``classifier_activation`` + norm, ``classifier_bias``), the masked-LM
  decoder's ``decoder_bias`` and the sequence classifier's ``classifier_pooling`` ("cls" / "mean").

Its dropouts are ``embedding_dropout`` (after the embedding norm), ``attention_dropout`` (attention
probabilities and output), ``mlp_dropout`` (inside the MLP) and ``classifier_dropout``; there is no residual
dropout, so ``hidden_dropout`` must stay 0. transformers' runtime knobs ``deterministic_flash_attn`` and
``reference_compile`` are not read; ModernBERT's truncated-normal initialisation
(``initializer_cutoff_factor``) is not reproduced (it only shapes random weights).
"""

from types import MappingProxyType
from typing import Any

import transformers
from huggingface_hub.dataclasses import strict
from transformers.activations import ACT2FN

from ...configuration import ZooConfig, shared_token_fields
from ...errors import ConfigError

REFERENCE_MODEL_TYPE = "modernbert"
LAYER_TYPES = ("full_attention", "sliding_attention")
CLASSIFIER_POOLINGS = ("cls", "mean")
_ROPE_KEYS = {"rope_type", "rope_theta"}


def _alternating_layers(config: "ModernBertConfig") -> list[str] | None:
    every = config.global_attn_every_n_layers
    if not isinstance(every, int) or every < 1:
        return None  # validation names global_attn_every_n_layers
    return [LAYER_TYPES[bool(i % every)] for i in range(config.num_hidden_layers)]


@strict
class ModernBertConfig(ZooConfig):
    """The zoo's ModernBERT config; defaults are those of ``answerdotai/ModernBERT-base``."""

    model_type = "zoo_modernbert"
    reference_model_types = (REFERENCE_MODEL_TYPE,)
    zoo_model_types = ("zoo_modernbert",)
    field_ranges = MappingProxyType(
        {
            **ZooConfig.field_ranges,
            "global_attn_every_n_layers": "count",
            "local_attention": "count",
            "local_rope_theta": "positive",
            **dict.fromkeys(("embedding_dropout", "mlp_dropout"), "probability"),
        }
    )
    derived_fields = MappingProxyType({**ZooConfig.derived_fields, "layer_types": _alternating_layers})

    vocab_size: int = 50368
    hidden_size: int = 768
    intermediate_size: int | None = 1152  # each half of the GeGLU input projection
    num_hidden_layers: int = 22
    num_attention_heads: int = 12
    hidden_act: str = "gelu"
    max_position_embeddings: int = 8192
    norm_type: str = "layernorm"
    mlp_type: str = "gated"
    attention_bias: bool = False
    mlp_bias: bool = False
    norm_bias: bool = False
    rope_parameters: dict | None = (
        None  # the global layers'; default {"rope_type": "default", "rope_theta": 160000.0}
    )
    local_rope_theta: float | int = 10000.0
    local_attention: int = 128  # the local layers' whole window: local_attention // 2 keys each side
    global_attn_every_n_layers: int = 3
    layer_types: list[str] | None = None  # default: global every global_attn_every_n_layers-th layer
    hidden_dropout: float | int = 0.0
    attention_dropout: float | int = 0.0
    embedding_dropout: float | int = 0.0
    mlp_dropout: float | int = 0.0
    classifier_dropout: float | int | None = 0.0
    classifier_pooling: str = "cls"
    classifier_activation: str = "gelu"
    classifier_bias: bool = False
    decoder_bias: bool = True
    pad_token_id: int | None = 50283
    bos_token_id: int | None = 50281
    eos_token_id: int | list[int] | None = 50282
    cls_token_id: int | None = 50281
    sep_token_id: int | None = 50282

    def __post_init__(self, **kwargs):
        if self.rope_parameters is None:
            self.rope_parameters = {"rope_type": "default", "rope_theta": 160000.0}
        super().__post_init__(**kwargs)

    @property
    def sliding_window(self) -> int:
        """Keys a local layer sees on each side of a query (transformers' ``ModernBertConfig.sliding_window``)."""
        return self.local_attention // 2

    def validate_modernbert(self):
        """What ModernBERT's architecture does not have fails here, by field name and with what is supported."""
        fixed = {
            "norm_type": (self.norm_type, "layernorm"),
            "mlp_type": (self.mlp_type, "gated"),
            "num_key_value_heads": (self.num_key_value_heads, self.num_attention_heads),
            "head_dim": (self.head_dim, self.hidden_size // self.num_attention_heads),
            "attention_out_bias": (self.attention_out_bias, self.attention_bias),
            "attention_scaling": (self.attention_scaling, self.head_dim**-0.5),
            "hidden_dropout": (self.hidden_dropout, 0),
        }
        for field, (value, supported) in fixed.items():
            if value != supported:
                raise ValueError(
                    f"{field}={value!r} is not supported by ModernBERT (supported: {supported!r}); "
                    "see zoo.models.modernbert.config"
                )
        for field, value, valid in (
            ("classifier_pooling", self.classifier_pooling, CLASSIFIER_POOLINGS),
            ("classifier_activation", self.classifier_activation, tuple(ACT2FN)),
        ):
            if value not in valid:
                raise ValueError(f"{field}={value!r} is not one of {', '.join(valid)}")
        rope_type = self.rope_parameters.get("rope_type", "default")
        extra = sorted(set(self.rope_parameters) - _ROPE_KEYS)
        if rope_type != "default" or extra:
            raise ValueError(
                f"rope_parameters={self.rope_parameters!r} is not supported by ModernBERT (supported: "
                "rope_type 'default' with rope_theta only)"
            )
        if self.layer_types is not None:
            unknown = sorted(set(self.layer_types) - set(LAYER_TYPES))
            if unknown or len(self.layer_types) != self.num_hidden_layers:
                raise ValueError(
                    f"layer_types={self.layer_types!r} must name one of {', '.join(LAYER_TYPES)} for each of "
                    f"the num_hidden_layers={self.num_hidden_layers} layers"
                )

    @classmethod
    def from_reference(cls, reference: dict[str, Any]) -> "ModernBertConfig":
        ref = transformers.ModernBertConfig.from_dict(reference)
        if ref.sparse_prediction:
            raise ConfigError(
                "ModernBERT config field sparse_prediction=True is not supported (only False): the zoo's "
                "masked LM returns the logits of every position (its loss is the same)"
            )
        thetas = {}
        for layer_type in LAYER_TYPES:
            rope = dict(ref.rope_parameters[layer_type])
            if rope.get("rope_type", "default") != "default" or set(rope) - _ROPE_KEYS:
                raise ConfigError(
                    f"ModernBERT config field rope_parameters[{layer_type!r}]={rope!r} is not supported "
                    "(supported: rope_type 'default' with rope_theta only)"
                )
            thetas[layer_type] = rope["rope_theta"]
        return cls(
            vocab_size=ref.vocab_size,
            hidden_size=ref.hidden_size,
            intermediate_size=ref.intermediate_size,
            num_hidden_layers=ref.num_hidden_layers,
            num_attention_heads=ref.num_attention_heads,
            hidden_act=ref.hidden_activation,
            max_position_embeddings=ref.max_position_embeddings,
            layer_norm_eps=ref.norm_eps,
            norm_bias=ref.norm_bias,
            attention_bias=ref.attention_bias,
            mlp_bias=ref.mlp_bias,
            rope_parameters={"rope_type": "default", "rope_theta": thetas["full_attention"]},
            local_rope_theta=thetas["sliding_attention"],
            local_attention=ref.local_attention,
            global_attn_every_n_layers=reference.get("global_attn_every_n_layers", 3),
            layer_types=list(ref.layer_types),
            attention_dropout=ref.attention_dropout,
            embedding_dropout=ref.embedding_dropout,
            mlp_dropout=ref.mlp_dropout,
            classifier_dropout=ref.classifier_dropout,
            classifier_pooling=ref.classifier_pooling,
            classifier_activation=ref.classifier_activation,
            classifier_bias=ref.classifier_bias,
            decoder_bias=ref.decoder_bias,
            cls_token_id=ref.cls_token_id,
            sep_token_id=ref.sep_token_id,
            reference_model_type=REFERENCE_MODEL_TYPE,
            **shared_token_fields(reference),
        )

    def to_reference(self, architecture: str) -> transformers.PreTrainedConfig:
        rope = {"rope_type": "default", "rope_theta": self.rope_parameters["rope_theta"]}
        return transformers.ModernBertConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            hidden_activation=self.hidden_act,
            max_position_embeddings=self.max_position_embeddings,
            initializer_range=self.initializer_range,
            norm_eps=self.layer_norm_eps,
            norm_bias=self.norm_bias,
            attention_bias=self.attention_bias,
            mlp_bias=self.mlp_bias,
            layer_types=list(self.layer_types),
            rope_parameters={
                "full_attention": rope,
                "sliding_attention": {"rope_type": "default", "rope_theta": self.local_rope_theta},
            },
            local_attention=self.local_attention,
            attention_dropout=self.attention_dropout,
            embedding_dropout=self.embedding_dropout,
            mlp_dropout=self.mlp_dropout,
            classifier_dropout=self.classifier_dropout or 0.0,
            classifier_pooling=self.classifier_pooling,
            classifier_activation=self.classifier_activation,
            classifier_bias=self.classifier_bias,
            decoder_bias=self.decoder_bias,
            sparse_prediction=False,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            cls_token_id=self.cls_token_id,
            sep_token_id=self.sep_token_id,
            tie_word_embeddings=self.tie_word_embeddings,
            architectures=[architecture],
        )
