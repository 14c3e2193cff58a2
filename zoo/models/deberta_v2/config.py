"""DeBERTa-v2 / v3 configuration: a post-LN encoder whose attention adds disentangled relative-position terms.

The fields beyond :class:`~zoo.ZooConfig`'s are transformers' ``DebertaV2Config`` names, with DeBERTa-v3's
values as defaults (``microsoft/deberta-v3-base``): relative attention over 256 log buckets, projected by
the content projections (``share_att_key``), a LayerNorm on the relative embeddings, no absolute
positions, no token types. ``attention_scaling`` is derived as ``(head_dim * (1 + len(pos_att_type)))
** -0.5``, DeBERTa's scale.

transformers reads several DeBERTa fields with ``getattr`` defaults that are not its config's fields
(``position_buckets``, ``share_att_key``, ``norm_rel_ebd``, ``conv_kernel_size``, ``conv_groups``,
``conv_act``, ``embedding_size``,
``attention_head_size``, ``pooler_hidden_size``, ``cls_dropout``); :meth:`from_reference` reads them with
those defaults, and refuses the values this family does not implement with a :class:`~zoo.errors.ConfigError`
naming the field, the value and what is supported.
"""

from types import MappingProxyType
from typing import Any

import transformers
from huggingface_hub.dataclasses import strict
from transformers.activations import ACT2FN

from ...configuration import ZooConfig, shared_token_fields
from ...errors import ConfigError

REFERENCE_MODEL_TYPE = "deberta-v2"
POSITION_ATTENTION_TYPES = ("c2p", "p2c")  # content-to-position, position-to-content
REL_EMBEDDING_NORMS = ("layer_norm", "none")


def attention_types(value) -> list[str]:
    """``"p2c|c2p"`` / ``["p2c", "c2p"]`` / None -> ``["p2c", "c2p"]`` / ``[]``, as transformers reads it."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.lower().split("|") if part.strip()]
    return list(value)


def _scaling(config) -> float | None:
    """DeBERTa's ``1 / sqrt(head_dim * (1 + len(pos_att_type)))``: one term per score component."""
    if config.head_dim is None or config.head_dim <= 0:
        return None
    return (config.head_dim * (1 + len(attention_types(config.pos_att_type)))) ** -0.5


@strict
class DebertaV2Config(ZooConfig):
    model_type = "zoo_deberta_v2"
    reference_model_types = (REFERENCE_MODEL_TYPE,)
    zoo_model_types = ("zoo_deberta_v2",)
    field_ranges = MappingProxyType({**ZooConfig.field_ranges, "pooler_dropout": "probability"})
    derived_fields = MappingProxyType({**ZooConfig.derived_fields, "attention_scaling": _scaling})

    vocab_size: int = 128100
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 0  # 0: no token-type embedding (DeBERTa-v3)
    layer_norm_eps: float = 1e-7
    pad_token_id: int | None = 0
    # Disentangled attention: relative positions between -max_relative_positions and +max_relative_positions
    # (-1: max_position_embeddings), in position_buckets log buckets (-1: no bucketing).
    relative_attention: bool = True
    max_relative_positions: int = -1
    position_buckets: int = 256
    pos_att_type: str | list[str] | None = "p2c|c2p"
    share_att_key: bool = True  # the relative embeddings go through the content query / key projections
    norm_rel_ebd: str = "layer_norm"  # "layer_norm": a LayerNorm on the relative embeddings; "none"
    position_biased_input: bool = False  # absolute position embeddings added to the input (DeBERTa-v2)
    # DeBERTa-v2 xlarge / xxlarge: a convolution over the first layer's input, added to its output (0: none)
    conv_kernel_size: int = 0
    conv_groups: int = 1
    conv_act: str = "tanh"
    # ContextPooler of the sequence classifier: act(dense(dropout(h[first token]))).
    pooler_hidden_act: str = "gelu"
    pooler_dropout: float | int = 0.0
    # The masked-LM head's checkpoint names: True ``cls.predictions.*`` (transformers' default), False
    # ``lm_predictions.lm_head.*`` (DeBERTa's own names). The maths is the same.
    legacy: bool = True

    def __post_init__(self, **kwargs):
        self.pos_att_type = attention_types(self.pos_att_type)
        super().__post_init__(**kwargs)

    def validate_disentangled_attention(self):
        """Part of ``@strict`` validation: DeBERTa's own fields."""
        unknown = [kind for kind in self.pos_att_type if kind not in POSITION_ATTENTION_TYPES]
        if unknown or len(set(self.pos_att_type)) != len(self.pos_att_type):
            raise ValueError(
                f"pos_att_type={self.pos_att_type!r} is not supported: a combination of "
                f"{', '.join(POSITION_ATTENTION_TYPES)}, each at most once"
            )
        norms = [part.strip() for part in self.norm_rel_ebd.lower().split("|")]
        if any(norm not in REL_EMBEDDING_NORMS for norm in norms):
            raise ValueError(
                f"norm_rel_ebd={self.norm_rel_ebd!r} is not supported: one of {', '.join(REL_EMBEDDING_NORMS)}"
            )
        for field in ("max_relative_positions", "position_buckets"):
            value = getattr(self, field)
            if value == 0 or value < -1:
                raise ValueError(f"{field} must be -1 (none) or a positive integer, got {value!r}")
        if self.conv_kernel_size < 0 or (self.conv_kernel_size and self.conv_kernel_size % 2 == 0):
            raise ValueError(
                f"conv_kernel_size must be 0 (no convolution) or an odd positive integer (a same-length "
                f"convolution), got {self.conv_kernel_size!r}"
            )
        if self.conv_groups < 1 or self.hidden_size % self.conv_groups:
            raise ValueError(
                f"conv_groups must be a positive divisor of hidden_size ({self.hidden_size}), got {self.conv_groups!r}"
            )
        if self.conv_act not in ACT2FN:
            raise ValueError(f"conv_act={self.conv_act!r} is not one of {', '.join(ACT2FN)}")
        if self.pooler_hidden_act not in ACT2FN:
            raise ValueError(
                f"pooler_hidden_act={self.pooler_hidden_act!r} is not one of {', '.join(ACT2FN)}"
            )
        if self.num_key_value_heads != self.num_attention_heads or (
            self.head_dim * self.num_attention_heads != self.hidden_size
        ):
            raise ValueError(
                f"num_key_value_heads={self.num_key_value_heads!r}, head_dim={self.head_dim!r} are not supported: "
                f"DeBERTa has num_attention_heads ({self.num_attention_heads}) key / value heads of "
                "hidden_size / num_attention_heads dimensions"
            )
        if self.type_vocab_size < 0:
            raise ValueError(
                f"type_vocab_size must be 0 (no token types) or more, got {self.type_vocab_size!r}"
            )
        if not self.legacy and not self.tie_word_embeddings:
            raise ValueError(
                "legacy=False with tie_word_embeddings=False is not supported: DeBERTa's masked-LM head "
                "(lm_predictions) projects onto the word embeddings, so its vocabulary projection is always tied"
            )

    @property
    def relative_span(self) -> int:
        """Relative embeddings per direction (transformers' ``pos_ebd_size``): buckets, else positions."""
        if self.position_buckets > 0:
            return self.position_buckets
        return (
            self.max_relative_positions if self.max_relative_positions > 0 else self.max_position_embeddings
        )

    @property
    def norms_rel_embeddings(self) -> bool:
        return "layer_norm" in [part.strip() for part in self.norm_rel_ebd.lower().split("|")]

    @classmethod
    def from_reference(cls, reference: dict[str, Any]) -> "DebertaV2Config":
        _refuse_unsupported(reference)
        ref = transformers.DebertaV2Config.from_dict(reference)
        legacy = ref.legacy
        return cls(
            vocab_size=ref.vocab_size,
            hidden_size=ref.hidden_size,
            num_hidden_layers=ref.num_hidden_layers,
            num_attention_heads=ref.num_attention_heads,
            intermediate_size=ref.intermediate_size,
            hidden_act=ref.hidden_act,
            max_position_embeddings=ref.max_position_embeddings,
            type_vocab_size=ref.type_vocab_size,
            layer_norm_eps=ref.layer_norm_eps,
            hidden_dropout=ref.hidden_dropout_prob,
            attention_dropout=ref.attention_probs_dropout_prob,
            classifier_dropout=getattr(ref, "cls_dropout", None),
            relative_attention=ref.relative_attention,
            max_relative_positions=ref.max_relative_positions,
            position_buckets=getattr(ref, "position_buckets", -1),
            pos_att_type=list(ref.pos_att_type or []),
            share_att_key=getattr(ref, "share_att_key", False),
            norm_rel_ebd=getattr(ref, "norm_rel_ebd", "none"),
            position_biased_input=ref.position_biased_input,
            conv_kernel_size=getattr(ref, "conv_kernel_size", 0),
            conv_groups=getattr(ref, "conv_groups", 1),
            conv_act=getattr(ref, "conv_act", "tanh"),
            pooler_hidden_act=ref.pooler_hidden_act,
            pooler_dropout=ref.pooler_dropout,
            legacy=legacy,
            reference_model_type=REFERENCE_MODEL_TYPE,
            # transformers' enhanced head reads the word embeddings whatever tie_word_embeddings says
            **{**shared_token_fields(reference), **({} if legacy else {"tie_word_embeddings": True})},
        )

    def to_reference(self, architecture: str) -> transformers.PreTrainedConfig:
        extra = {} if self.classifier_dropout is None else {"cls_dropout": self.classifier_dropout}
        return transformers.DebertaV2Config(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            hidden_act=self.hidden_act,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            layer_norm_eps=self.layer_norm_eps,
            hidden_dropout_prob=self.hidden_dropout,
            attention_probs_dropout_prob=self.attention_dropout,
            initializer_range=self.initializer_range,
            relative_attention=self.relative_attention,
            max_relative_positions=self.max_relative_positions,
            position_buckets=self.position_buckets,
            pos_att_type=list(self.pos_att_type),
            share_att_key=self.share_att_key,
            norm_rel_ebd=self.norm_rel_ebd,
            position_biased_input=self.position_biased_input,
            conv_kernel_size=self.conv_kernel_size,
            conv_groups=self.conv_groups,
            conv_act=self.conv_act,
            pooler_hidden_size=self.hidden_size,
            pooler_hidden_act=self.pooler_hidden_act,
            pooler_dropout=self.pooler_dropout,
            legacy=self.legacy,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            tie_word_embeddings=self.tie_word_embeddings,
            architectures=[architecture],
            **extra,
        )


def _refuse_unsupported(reference: dict[str, Any]) -> None:
    """ConfigError for a transformers DeBERTa-v2 value this family does not implement (transformers reads
    these with ``getattr`` defaults, so they are checked on the raw ``config.json`` dict)."""
    hidden = reference.get("hidden_size", transformers.DebertaV2Config.hidden_size)
    heads = reference.get("num_attention_heads", transformers.DebertaV2Config.num_attention_heads)
    supported = {
        # field: (the value transformers assumes when absent, what is supported, its description)
        "embedding_size": (hidden, lambda v: v == hidden, f"hidden_size ({hidden}): no embedding projection"),
        "attention_head_size": (
            hidden // heads if heads else None,
            lambda v: heads and v * heads == hidden,
            f"hidden_size / num_attention_heads ({hidden // heads if heads else '?'})",
        ),
        "pooler_hidden_size": (hidden, lambda v: v == hidden, f"hidden_size ({hidden})"),
    }
    for field, (default, valid, description) in supported.items():
        value = reference.get(field, default)
        if value is not None and not valid(value):
            raise ConfigError(
                f"DeBERTa-v2 {field}={value!r} is not implemented by the zoo's deberta-v2 family; supported: "
                f"{description}"
            )
