"""Qwen3 configuration: the Llama family's fields, Qwen3's defaults, and the transformers ``Qwen3Config``
translation.

Qwen3 is a Llama decoder whose attention normalises each query and key head (RMSNorm over ``head_dim``,
after the projection and before the rotary positions). Its ``head_dim`` is explicit in every checkpoint
(Qwen3-0.6B: 128 with hidden 1024 and 16 heads), it has no q/k/v bias by default, and it uses a sliding
window only when ``use_sliding_window`` is set (on the layers from ``max_window_layers`` on). The zoo does
not implement those windowed layers: a checkpoint asking for them is refused with a :class:`ConfigError`.
"""

from typing import Any

import transformers
from huggingface_hub.dataclasses import strict

from ...configuration import shared_token_fields
from ...errors import ConfigError
from ..llama.config import LlamaConfig


@strict
class Qwen3Config(LlamaConfig):
    """As :class:`~zoo.models.llama.config.LlamaConfig` except Qwen3's defaults (those of transformers'
    ``Qwen3Config``), the ``qwen3`` reference, and no sliding window (``sliding_window`` must stay None).

    ``layer_norm_eps`` is also the epsilon of the per-head query / key norms (transformers' ``rms_norm_eps``).
    """

    model_type = "zoo_qwen3"
    reference_model_types = ("qwen3",)
    zoo_model_types = ("zoo_qwen3",)

    vocab_size: int = 151936
    hidden_size: int = 4096
    intermediate_size: int | None = 22016
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    max_position_embeddings: int = 32768
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None

    def validate_no_sliding_window(self):
        if self.sliding_window is not None:
            raise ValueError(
                f"sliding_window={self.sliding_window!r} is not supported by Qwen3 (only None): the zoo "
                "does not implement Qwen3's windowed layers (use_sliding_window / max_window_layers)"
            )

    @classmethod
    def from_reference(cls, reference: dict[str, Any]) -> "Qwen3Config":
        ref = transformers.Qwen3Config.from_dict(reference)
        if ref.use_sliding_window:
            raise ConfigError(
                "Qwen3 config field use_sliding_window=True is not supported (only False): the zoo does not "
                "implement Qwen3's sliding-window layers"
            )
        unsupported = sorted(set(ref.layer_types) - {"full_attention"})
        if unsupported:
            raise ConfigError(
                f"Qwen3 config field layer_types names {unsupported}; only 'full_attention' is supported"
            )
        return cls(
            vocab_size=ref.vocab_size,
            hidden_size=ref.hidden_size,
            intermediate_size=ref.intermediate_size,
            num_hidden_layers=ref.num_hidden_layers,
            num_attention_heads=ref.num_attention_heads,
            num_key_value_heads=ref.num_key_value_heads,
            head_dim=ref.head_dim,
            hidden_act=ref.hidden_act,
            max_position_embeddings=ref.max_position_embeddings,
            layer_norm_eps=ref.rms_norm_eps,
            attention_bias=ref.attention_bias,  # q / k / v and o alike
            attention_out_bias=ref.attention_bias,
            mlp_bias=False,
            attention_dropout=ref.attention_dropout,
            rope_parameters=dict(ref.rope_parameters),
            reference_model_type="qwen3",
            **shared_token_fields(reference),
        )

    def to_reference(self, architecture: str) -> transformers.PreTrainedConfig:
        refused = {
            "attention_out_bias": (self.attention_out_bias, self.attention_bias, "attention_bias (one flag)"),
            "mlp_bias": (self.mlp_bias, False, "False"),
            "norm_type": (self.norm_type, "rmsnorm", "'rmsnorm'"),
            "mlp_type": (self.mlp_type, "gated", "'gated'"),
        }
        for field, (value, supported, description) in refused.items():
            if value != supported:
                raise ConfigError(
                    f"{field}={value!r} cannot be expressed as a qwen3 config (supported: {description})"
                )
        return transformers.Qwen3Config(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            head_dim=self.head_dim,
            hidden_act=self.hidden_act,
            max_position_embeddings=self.max_position_embeddings,
            rms_norm_eps=self.layer_norm_eps,
            attention_bias=self.attention_bias,
            attention_dropout=self.attention_dropout,
            rope_parameters=dict(self.rope_parameters),
            use_sliding_window=False,
            initializer_range=self.initializer_range,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            tie_word_embeddings=self.tie_word_embeddings,
            use_cache=self.use_cache,
            architectures=[architecture],
        )
