"""Llama-family configuration: one zoo family for Llama, Mistral and Qwen2 checkpoints.

A pre-RMSNorm decoder with rotary positions, grouped-query attention and a SwiGLU feed-forward.
The three reference architectures differ only by data: Qwen2 has q/k/v biases, Mistral may use a
sliding attention window, tying of the LM head varies by checkpoint.
"""

from types import MappingProxyType
from typing import Any

import transformers
from huggingface_hub.dataclasses import strict

from ...configuration import ZooConfig, shared_token_fields
from ...errors import ConfigError

_REFERENCE_CONFIGS = {
    "llama": transformers.LlamaConfig,
    "mistral": transformers.MistralConfig,
    "qwen2": transformers.Qwen2Config,
}
# (attention_bias, attention_out_bias, mlp_bias) that Mistral and Qwen2 checkpoints always have.
_FIXED_BIASES = {"mistral": (False, False, False), "qwen2": (True, False, False)}


@strict
class LlamaConfig(ZooConfig):
    model_type = "zoo_llama"
    reference_model_types = ("llama", "mistral", "qwen2")
    zoo_model_types = ("zoo_llama",)
    field_ranges = MappingProxyType({**ZooConfig.field_ranges, "sliding_window": "count"})

    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int | None = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    hidden_act: str = "silu"
    max_position_embeddings: int = 2048
    norm_type: str = "rmsnorm"
    mlp_type: str = "gated"
    layer_norm_eps: float = 1e-6
    attention_bias: bool = False
    attention_out_bias: bool = False
    mlp_bias: bool = False
    hidden_dropout: float | int = 0.0
    attention_dropout: float | int = 0.0
    tie_word_embeddings: bool = False
    sliding_window: int | None = None
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2

    def __post_init__(self, **kwargs):
        if self.rope_parameters is None:
            self.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0}
        super().__post_init__(**kwargs)

    @classmethod
    def from_reference(cls, reference: dict[str, Any]) -> "LlamaConfig":
        model_type = reference.get("model_type", "llama")
        ref = _REFERENCE_CONFIGS[model_type].from_dict(reference)
        attention_bias = getattr(ref, "attention_bias", model_type == "qwen2")
        sliding_window = getattr(ref, "sliding_window", None)
        if model_type == "qwen2":  # Qwen2 declares a window but uses it only when asked to
            if getattr(ref, "use_sliding_window", False):
                raise ConfigError("Qwen2 config field use_sliding_window=True is not supported (only False)")
            sliding_window = None
        return cls(
            vocab_size=ref.vocab_size,
            hidden_size=ref.hidden_size,
            intermediate_size=ref.intermediate_size,
            num_hidden_layers=ref.num_hidden_layers,
            num_attention_heads=ref.num_attention_heads,
            num_key_value_heads=ref.num_key_value_heads,
            head_dim=getattr(ref, "head_dim", None),
            hidden_act=ref.hidden_act,
            max_position_embeddings=ref.max_position_embeddings,
            layer_norm_eps=ref.rms_norm_eps,
            attention_bias=attention_bias,
            attention_out_bias=getattr(ref, "attention_bias", False),  # Qwen2: q/k/v bias only
            mlp_bias=getattr(ref, "mlp_bias", False),
            attention_dropout=ref.attention_dropout,
            rope_parameters=dict(ref.rope_parameters),
            sliding_window=sliding_window,
            reference_model_type=model_type,
            **shared_token_fields(reference),
        )

    def to_reference(self, architecture: str) -> transformers.PreTrainedConfig:
        fields = dict(
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
            attention_dropout=self.attention_dropout,
            rope_parameters=dict(self.rope_parameters),
            initializer_range=self.initializer_range,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            tie_word_embeddings=self.tie_word_embeddings,
            use_cache=self.use_cache,
            architectures=[architecture],
        )
        reference_type = self.reference_model_type
        if reference_type == "llama":
            fields.update(attention_bias=self.attention_bias, mlp_bias=self.mlp_bias)
        elif reference_type == "mistral":
            fields.update(sliding_window=self.sliding_window)
        biases = (self.attention_bias, self.attention_out_bias, self.mlp_bias)
        if reference_type == "llama":  # one flag for q / k / v / o
            expressible = self.attention_bias == self.attention_out_bias
        else:
            expressible = biases == _FIXED_BIASES[reference_type]
        if not expressible or (self.sliding_window is not None and reference_type != "mistral"):
            raise ConfigError(
                f"(attention_bias, attention_out_bias, mlp_bias)={biases}, sliding_window={self.sliding_window} "
                f"cannot be expressed as a {reference_type} config"
            )
        return _REFERENCE_CONFIGS[reference_type](**fields)
