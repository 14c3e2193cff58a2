"""GPT-2 configuration: a pre-LN decoder with learned absolute positions and a tied LM head."""

from types import MappingProxyType
from typing import Any

import transformers
from huggingface_hub.dataclasses import strict

from ...configuration import ZooConfig, shared_token_fields
from ...errors import ConfigError


@strict
class GPT2Config(ZooConfig):
    model_type = "zoo_gpt2"
    reference_model_types = ("gpt2",)
    zoo_model_types = ("zoo_gpt2",)
    field_ranges = MappingProxyType({**ZooConfig.field_ranges, "embedding_dropout": "probability"})

    vocab_size: int = 50257
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    hidden_act: str = "gelu_new"
    max_position_embeddings: int = 1024
    layer_norm_eps: float = 1e-5
    embedding_dropout: float | int = 0.1
    bos_token_id: int | None = 50256
    eos_token_id: int | list[int] | None = 50256

    @classmethod
    def from_reference(cls, reference: dict[str, Any]) -> "GPT2Config":
        ref = transformers.GPT2Config.from_dict(reference)
        unsupported = {
            "add_cross_attention": (ref.add_cross_attention, False),
            "scale_attn_by_inverse_layer_idx": (ref.scale_attn_by_inverse_layer_idx, False),
            "scale_attn_weights": (ref.scale_attn_weights, True),
        }
        for field, (value, supported) in unsupported.items():
            if value != supported:
                raise ConfigError(f"GPT-2 config field {field}={value} is not supported (only {supported})")
        return cls(
            vocab_size=ref.vocab_size,
            hidden_size=ref.n_embd,
            num_hidden_layers=ref.n_layer,
            num_attention_heads=ref.n_head,
            intermediate_size=ref.n_inner or 4 * ref.n_embd,
            hidden_act=ref.activation_function,
            max_position_embeddings=ref.n_positions,
            layer_norm_eps=ref.layer_norm_epsilon,
            hidden_dropout=ref.resid_pdrop,
            attention_dropout=ref.attn_pdrop,
            embedding_dropout=ref.embd_pdrop,
            **shared_token_fields(reference),
        )

    def to_reference(self, architecture: str) -> transformers.GPT2Config:
        return transformers.GPT2Config(
            vocab_size=self.vocab_size,
            n_embd=self.hidden_size,
            n_layer=self.num_hidden_layers,
            n_head=self.num_attention_heads,
            n_inner=self.intermediate_size,
            activation_function=self.hidden_act,
            n_positions=self.max_position_embeddings,
            layer_norm_epsilon=self.layer_norm_eps,
            resid_pdrop=self.hidden_dropout,
            attn_pdrop=self.attention_dropout,
            embd_pdrop=self.embedding_dropout,
            initializer_range=self.initializer_range,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            tie_word_embeddings=self.tie_word_embeddings,
            use_cache=self.use_cache,
            architectures=[architecture],
        )
