"""Gemma 2 configuration: the Llama family's fields plus Gemma's, and the transformers ``Gemma2Config``
translation.

Gemma 2 is a pre- and post-norm decoder: ``(1 + w)`` RMSNorms before and after each sub-layer, token
embeddings scaled by ``sqrt(hidden_size)``, a GeGLU feed-forward (``gelu_pytorch_tanh``), attention scaled
by ``query_pre_attn_scalar ** -0.5`` instead of ``head_dim ** -0.5``, sliding-window and global layers
alternating as ``layer_types`` says, and tanh soft-capping of the attention scores
(``attn_logit_softcapping``) and of the final logits (``final_logit_softcapping``).
"""

from types import MappingProxyType
from typing import Any

import transformers
from huggingface_hub.dataclasses import strict

from ...configuration import ZooConfig, shared_token_fields
from ...errors import ConfigError
from ..llama.config import LlamaConfig

LAYER_TYPES = ("sliding_attention", "full_attention")


def alternating_layer_types(count: int, pattern: int) -> list[str]:
    """transformers' default: every ``pattern``-th layer global, the others sliding-window."""
    return ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(count)]


def refuse_unsupported(family: str, reference) -> None:
    """A transformers Gemma config value the zoo does not implement: a ConfigError naming it."""
    if getattr(reference, "use_bidirectional_attention", None):
        raise ConfigError(
            f"{family} config field use_bidirectional_attention=True is not supported (only False/None): "
            "the zoo implements the causal Gemma decoder"
        )
    unsupported = sorted(set(reference.layer_types) - set(LAYER_TYPES))
    if unsupported:
        raise ConfigError(
            f"{family} config field layer_types names {unsupported}; supported: {', '.join(LAYER_TYPES)}"
        )


@strict
class Gemma2Config(LlamaConfig):
    """As :class:`~zoo.models.llama.config.LlamaConfig` except Gemma 2's defaults (those of transformers'
    ``Gemma2Config``) and fields: ``query_pre_attn_scalar`` (``attention_scaling`` is derived from it),
    ``layer_types`` (default: sliding and global alternating), ``sliding_window`` (the sliding layers'),
    ``attn_logit_softcapping`` and ``final_logit_softcapping`` (None: no cap)."""

    model_type = "zoo_gemma2"
    reference_model_types = ("gemma2",)
    zoo_model_types = ("zoo_gemma2",)
    field_ranges = MappingProxyType(
        {
            **LlamaConfig.field_ranges,
            "query_pre_attn_scalar": "positive",
            "attn_logit_softcapping": "positive",
            "final_logit_softcapping": "positive",
        }
    )
    # Every ``sliding_window_pattern``-th layer is global when ``layer_types`` is not given.
    sliding_window_pattern = 2
    derived_fields = MappingProxyType(
        {
            **ZooConfig.derived_fields,
            "attention_scaling": lambda config: (
                config.query_pre_attn_scalar**-0.5 if config.query_pre_attn_scalar > 0 else None
            ),
            "layer_types": lambda config: alternating_layer_types(
                config.num_hidden_layers, config.sliding_window_pattern
            ),
        }
    )

    vocab_size: int = 256000
    hidden_size: int = 2304
    intermediate_size: int | None = 9216
    num_hidden_layers: int = 26
    num_attention_heads: int = 8
    num_key_value_heads: int | None = 4
    head_dim: int | None = 256
    hidden_act: str = "gelu_pytorch_tanh"
    max_position_embeddings: int = 8192
    tie_word_embeddings: bool = True
    sliding_window: int | None = 4096
    query_pre_attn_scalar: int | float = 256
    layer_types: list[str] | None = None
    attn_logit_softcapping: float | int | None = 50.0
    final_logit_softcapping: float | int | None = 30.0
    pad_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 1
    bos_token_id: int | None = 2

    def validate_gemma(self):
        """What the zoo's Gemma does not implement fails here, by field name and with the supported values."""
        if len(self.layer_types) != self.num_hidden_layers:
            raise ValueError(
                f"layer_types has {len(self.layer_types)} entries; num_hidden_layers={self.num_hidden_layers} "
                "needs one per layer"
            )
        unsupported = sorted(set(self.layer_types) - set(LAYER_TYPES))
        if unsupported:
            raise ValueError(f"layer_types names {unsupported}; supported: {', '.join(LAYER_TYPES)}")
        if "sliding_attention" in self.layer_types and self.sliding_window is None:
            raise ValueError("sliding_window=None: the sliding_attention layers of layer_types need a window")
        expected = self.query_pre_attn_scalar**-0.5
        if self.attention_scaling != expected:
            raise ValueError(
                f"attention_scaling={self.attention_scaling!r}: Gemma scales by query_pre_attn_scalar ** -0.5 "
                f"= {expected!r} (set query_pre_attn_scalar instead)"
            )
        for field, value, supported in (
            ("norm_type", self.norm_type, "rmsnorm"),
            ("mlp_type", self.mlp_type, "gated"),
        ):
            if value != supported:
                raise ValueError(f"{field}={value!r} is not supported by Gemma (only {supported!r})")

    # -- transformers ---------------------------------------------------------------------------------
    @classmethod
    def reference_fields(cls, ref) -> dict[str, Any]:
        """The zoo fields of a transformers Gemma 2 / Gemma 3 text config (rotary parameters aside)."""
        return dict(
            vocab_size=ref.vocab_size,
            hidden_size=ref.hidden_size,
            intermediate_size=ref.intermediate_size,
            num_hidden_layers=ref.num_hidden_layers,
            num_attention_heads=ref.num_attention_heads,
            num_key_value_heads=ref.num_key_value_heads,
            head_dim=ref.head_dim,
            hidden_act=ref.hidden_activation,
            max_position_embeddings=ref.max_position_embeddings,
            layer_norm_eps=ref.rms_norm_eps,
            attention_bias=ref.attention_bias,  # q / k / v and o alike
            attention_out_bias=ref.attention_bias,
            mlp_bias=False,
            attention_dropout=ref.attention_dropout,
            query_pre_attn_scalar=ref.query_pre_attn_scalar,
            sliding_window=ref.sliding_window,
            layer_types=list(ref.layer_types),
            attn_logit_softcapping=ref.attn_logit_softcapping,
            final_logit_softcapping=ref.final_logit_softcapping,
        )

    @classmethod
    def from_reference(cls, reference: dict[str, Any]) -> "Gemma2Config":
        ref = transformers.Gemma2Config.from_dict(reference)
        refuse_unsupported("Gemma2", ref)
        return cls(
            **cls.reference_fields(ref),
            rope_parameters=dict(ref.rope_parameters),
            reference_model_type="gemma2",
            **shared_token_fields(reference),
        )

    def shared_reference_fields(self, architecture: str) -> dict[str, Any]:
        """The transformers fields of this config (rotary parameters aside); a value transformers' Gemma
        cannot express is a ConfigError naming it."""
        refused = {
            "attention_out_bias": (self.attention_out_bias, self.attention_bias, "attention_bias (one flag)"),
            "mlp_bias": (self.mlp_bias, False, "False"),
            "hidden_dropout": (self.hidden_dropout, 0.0, "0.0: Gemma has no residual dropout"),
        }
        for field, (value, supported, description) in refused.items():
            if value != supported:
                raise ConfigError(
                    f"{field}={value!r} cannot be expressed as a {self.reference_model_type} config "
                    f"(supported: {description})"
                )
        return dict(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            head_dim=self.head_dim,
            hidden_activation=self.hidden_act,
            max_position_embeddings=self.max_position_embeddings,
            rms_norm_eps=self.layer_norm_eps,
            attention_bias=self.attention_bias,
            attention_dropout=self.attention_dropout,
            query_pre_attn_scalar=self.query_pre_attn_scalar,
            sliding_window=self.sliding_window,
            layer_types=list(self.layer_types),
            attn_logit_softcapping=self.attn_logit_softcapping,
            final_logit_softcapping=self.final_logit_softcapping,
            initializer_range=self.initializer_range,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            tie_word_embeddings=self.tie_word_embeddings,
            use_cache=self.use_cache,
            architectures=[architecture],
        )

    def to_reference(self, architecture: str) -> transformers.PreTrainedConfig:
        return transformers.Gemma2Config(
            **self.shared_reference_fields(architecture), rope_parameters=dict(self.rope_parameters)
        )
