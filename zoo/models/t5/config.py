"""T5 configuration: a pre-LN encoder-decoder with relative position bias and RMS-style norms.

Original T5 (``feed_forward_proj="relu"``) ties the LM head to the token embedding and scales the
decoder output by ``hidden_size**-0.5`` before it; T5 v1.1 / FLAN-T5 (``"gated-gelu"``) uses a
gated-GELU feed-forward and an untied, unscaled head.
"""

from types import MappingProxyType
from typing import Any

import transformers
from huggingface_hub.dataclasses import strict

from ...configuration import ZooConfig, shared_token_fields


@strict
class T5Config(ZooConfig):
    model_type = "zoo_t5"
    reference_model_types = ("t5",)
    zoo_model_types = ("zoo_t5",)
    field_ranges = MappingProxyType(
        {
            **ZooConfig.field_ranges,
            **dict.fromkeys(
                ("num_decoder_layers", "relative_attention_num_buckets", "relative_attention_max_distance"),
                "count",
            ),
            "initializer_factor": "scale",
        }
    )

    vocab_size: int = 32128
    hidden_size: int = 512
    num_hidden_layers: int = 6  # encoder layers
    num_decoder_layers: int | None = None  # default: num_hidden_layers
    num_attention_heads: int = 8
    head_dim: int | None = 64
    intermediate_size: int | None = 2048
    hidden_act: str = "relu"
    mlp_type: str = "mlp"
    norm_type: str = "rmsnorm"
    layer_norm_eps: float = 1e-6
    attention_bias: bool = False
    mlp_bias: bool = False
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    # T5 does not scale query . key by 1/sqrt(head_dim); the scale is folded into its initialisation.
    attention_scaling: float | None = 1.0
    # None: scale exactly when the head is tied (T5's rule); transformers 5 records it explicitly.
    scale_decoder_outputs: bool | None = None
    initializer_factor: float = 1.0
    is_encoder_decoder: bool = True
    pad_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 1
    decoder_start_token_id: int | None = 0

    def __post_init__(self, **kwargs):
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_hidden_layers
        if self.scale_decoder_outputs is None:
            self.scale_decoder_outputs = self.tie_word_embeddings
        super().__post_init__(**kwargs)

    def validate_relative_attention(self):
        """Part of ``@strict`` validation: the log-spaced buckets need an exact bucket and room beyond it."""
        if self.relative_attention_num_buckets < 4:
            raise ValueError(
                f"relative_attention_num_buckets must be at least 4, got {self.relative_attention_num_buckets}"
            )
        if self.relative_attention_max_distance <= self.relative_attention_num_buckets // 2:
            raise ValueError(
                f"relative_attention_max_distance ({self.relative_attention_max_distance}) must be more than "
                f"relative_attention_num_buckets // 2 ({self.relative_attention_num_buckets // 2})"
            )

    @property
    def feed_forward_proj(self) -> str:
        """The transformers name of the feed-forward (``"relu"``, ``"gated-gelu"``, ...)."""
        if self.mlp_type == "gated":
            return "gated-gelu" if self.hidden_act == "gelu_new" else f"gated-{self.hidden_act}"
        return self.hidden_act

    @classmethod
    def from_reference(cls, reference: dict[str, Any]) -> "T5Config":
        ref = transformers.T5Config.from_dict(reference)
        # transformers 5 always sets ref.tie_word_embeddings; the file says what the checkpoint is.
        tied = reference.get("tie_word_embeddings", True) is not False
        return cls(
            vocab_size=ref.vocab_size,
            hidden_size=ref.d_model,
            num_hidden_layers=ref.num_layers,
            num_decoder_layers=ref.num_decoder_layers,
            num_attention_heads=ref.num_heads,
            head_dim=ref.d_kv,
            intermediate_size=ref.d_ff,
            hidden_act=ref.dense_act_fn,
            mlp_type="gated" if ref.is_gated_act else "mlp",
            layer_norm_eps=ref.layer_norm_epsilon,
            hidden_dropout=ref.dropout_rate,
            attention_dropout=ref.dropout_rate,
            relative_attention_num_buckets=ref.relative_attention_num_buckets,
            relative_attention_max_distance=ref.relative_attention_max_distance,
            initializer_factor=ref.initializer_factor,
            scale_decoder_outputs=reference.get("scale_decoder_outputs", tied),
            decoder_start_token_id=reference.get("decoder_start_token_id", ref.pad_token_id),
            **{**shared_token_fields(reference), "tie_word_embeddings": tied},
        )

    def to_reference(self, architecture: str) -> transformers.T5Config:
        return transformers.T5Config(
            vocab_size=self.vocab_size,
            d_model=self.hidden_size,
            d_kv=self.head_dim,
            d_ff=self.intermediate_size,
            num_layers=self.num_hidden_layers,
            num_decoder_layers=self.num_decoder_layers,
            num_heads=self.num_attention_heads,
            relative_attention_num_buckets=self.relative_attention_num_buckets,
            relative_attention_max_distance=self.relative_attention_max_distance,
            dropout_rate=self.hidden_dropout,
            layer_norm_epsilon=self.layer_norm_eps,
            initializer_factor=self.initializer_factor,
            feed_forward_proj=self.feed_forward_proj,
            use_cache=self.use_cache,
            pad_token_id=self.pad_token_id,
            eos_token_id=self.eos_token_id,
            decoder_start_token_id=self.decoder_start_token_id,
            tie_word_embeddings=self.tie_word_embeddings,
            scale_decoder_outputs=self.scale_decoder_outputs,
            architectures=[architecture],
        )
