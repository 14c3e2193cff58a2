"""Phi-3 configuration: the Llama family's decoder with Phi-3's defaults and field names.

A pre-RMSNorm decoder with rotary positions, grouped-query attention and a SwiGLU feed-forward, no
biases. What differs from Llama is data: transformers' names (``resid_pdrop``, ``rms_norm_eps``), the
``original_max_position_embeddings`` LongRoPE switches its factors at, and the checkpoint layout
(fused ``qkv_proj`` / ``gate_up_proj``, see ``weights.py``).
"""

from types import MappingProxyType
from typing import Any

import transformers
from huggingface_hub.dataclasses import strict

from ...configuration import shared_token_fields
from ...errors import ConfigError
from ..llama.config import LlamaConfig

# The rotary types transformers' Phi3 accepts (its validate_rope); "su" / "yarn" it reads as longrope.
ROPE_TYPES = ("default", "longrope")


@strict
class Phi3Config(LlamaConfig):
    model_type = "zoo_phi3"
    reference_model_types = ("phi3",)
    zoo_model_types = ("zoo_phi3",)
    field_ranges = MappingProxyType({**LlamaConfig.field_ranges, "original_max_position_embeddings": "count"})

    vocab_size: int = 32064
    hidden_size: int = 3072
    intermediate_size: int | None = 8192
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    max_position_embeddings: int = 4096
    # The pre-training length: LongRoPE uses its long factors beyond it (transformers reads this field
    # in preference to rope_parameters["original_max_position_embeddings"], and so does the zoo).
    original_max_position_embeddings: int = 4096
    layer_norm_eps: float = 1e-5
    eos_token_id: int | list[int] | None = 32000
    pad_token_id: int | None = 32000

    def validate_phi3(self):
        """What the zoo's Phi-3 does not implement fails here, by field name and with the supported values."""
        rope = self.rope_parameters or {}
        rope_type = rope.get("rope_type", "default")
        if rope_type not in ROPE_TYPES:
            raise ValueError(
                f"rope_parameters['rope_type']={rope_type!r} is not supported by Phi-3 (supported: "
                f"{', '.join(ROPE_TYPES)})"
            )
        factor = rope.get("partial_rotary_factor", 1.0)
        if factor != 1.0:
            raise ValueError(
                f"rope_parameters['partial_rotary_factor']={factor!r} is not supported (supported: 1.0): "
                "the zoo's rotary layer rotates whole heads"
            )
        if rope_type == "longrope":
            for key in ("short_factor", "long_factor"):
                value = rope.get(key)
                if not (isinstance(value, list) and all(isinstance(x, (int, float)) for x in value)):
                    raise ValueError(f"rope_parameters[{key!r}] must be a list of numbers, got {value!r}")
                if len(value) != self.head_dim // 2:
                    raise ValueError(
                        f"rope_parameters[{key!r}] must have head_dim // 2 = {self.head_dim // 2} entries, "
                        f"got {len(value)}"
                    )

    @classmethod
    def from_reference(cls, reference: dict[str, Any]) -> "Phi3Config":
        ref = transformers.Phi3Config.from_dict(reference)
        if ref.embd_pdrop:
            raise ConfigError(
                f"Phi3 config field embd_pdrop={ref.embd_pdrop} is not supported (only 0.0): transformers' "
                "Phi3 declares it but applies no embedding dropout, and neither does the zoo"
            )
        return cls(
            vocab_size=ref.vocab_size,
            hidden_size=ref.hidden_size,
            intermediate_size=ref.intermediate_size,
            num_hidden_layers=ref.num_hidden_layers,
            num_attention_heads=ref.num_attention_heads,
            num_key_value_heads=ref.num_key_value_heads,
            hidden_act=ref.hidden_act,
            max_position_embeddings=ref.max_position_embeddings,
            original_max_position_embeddings=ref.original_max_position_embeddings,
            layer_norm_eps=ref.rms_norm_eps,
            hidden_dropout=ref.resid_pdrop,  # both residual branches, as the zoo's decoder block
            attention_dropout=ref.attention_dropout,
            rope_parameters=dict(ref.rope_parameters),
            sliding_window=ref.sliding_window,
            reference_model_type="phi3",
            **shared_token_fields(reference),
        )

    def to_reference(self, architecture: str) -> transformers.PreTrainedConfig:
        inexpressible = {
            "attention_bias": (self.attention_bias, False),
            "attention_out_bias": (self.attention_out_bias, False),
            "mlp_bias": (self.mlp_bias, False),
            "norm_type": (self.norm_type, "rmsnorm"),
            "mlp_type": (self.mlp_type, "gated"),
            "head_dim": (self.head_dim, self.hidden_size // self.num_attention_heads),
        }
        wrong = {field: value for field, (value, phi3) in inexpressible.items() if value != phi3}
        if wrong:
            raise ConfigError(
                f"{', '.join(f'{k}={v!r}' for k, v in wrong.items())} cannot be expressed as a phi3 config "
                f"(Phi-3 has {', '.join(f'{k}={inexpressible[k][1]!r}' for k in wrong)})"
            )
        return transformers.Phi3Config(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            resid_pdrop=self.hidden_dropout,
            embd_pdrop=0.0,
            attention_dropout=self.attention_dropout,
            hidden_act=self.hidden_act,
            max_position_embeddings=self.max_position_embeddings,
            original_max_position_embeddings=self.original_max_position_embeddings,
            initializer_range=self.initializer_range,
            rms_norm_eps=self.layer_norm_eps,
            use_cache=self.use_cache,
            tie_word_embeddings=self.tie_word_embeddings,
            rope_parameters=dict(self.rope_parameters),
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            sliding_window=self.sliding_window,
            architectures=[architecture],
        )
