"""BART configuration: a post-LN encoder-decoder with learned positions, read from and written as
transformers' ``BartConfig``.

BART embeds tokens (scaled by sqrt(d_model) where ``scale_embedding``) plus learned positions (a table
of ``max_position_embeddings + 2`` rows: fairseq's offset of 2), normalises the sum
(``layernorm_embedding``), and runs post-LN blocks with biased attention and a GELU MLP. The token
embedding is shared by the encoder, the decoder and the LM head, whose logits get ``final_logits_bias``.
The defaults are those of ``facebook/bart-base``.

What the zoo does not implement is refused with a :class:`~zoo.errors.ConfigError` naming the field,
the value and what is supported: fairseq-era layout flags that transformers 5 ignores
(``normalize_before``, ``add_final_layer_norm``, ``add_bias_logits``, ``normalize_embedding``,
``static_position_embeddings``), LayerDrop, and encoder / decoder stacks of different widths.
"""

from types import MappingProxyType
from typing import Any, ClassVar

import transformers
from huggingface_hub.dataclasses import strict

from ...configuration import ZooConfig, shared_token_fields
from ...errors import ConfigError

# transformers' BartLearnedPositionalEmbedding: position p reads row p + 2 (rows 0, 1 are unused).
POSITION_OFFSET = 2


@strict
class BartConfig(ZooConfig):
    """The shared fields plus BART's: ``num_decoder_layers``, ``scale_embedding``, ``activation_dropout``
    (dropout after the MLP activation), ``decoder_start_token_id`` and the forced generation tokens."""

    model_type = "zoo_bart"
    reference_model_types = ("bart",)
    zoo_model_types = ("zoo_bart",)
    field_ranges = MappingProxyType(
        {**ZooConfig.field_ranges, "num_decoder_layers": "count", "activation_dropout": "probability"}
    )
    # mBART: pre-LN blocks and a final LayerNorm on each stack (fairseq's normalize_before and
    # add_final_layer_norm); BART: post-LN blocks, no final norm.
    pre_norm: ClassVar[bool] = False
    reference_config_class: ClassVar[type] = transformers.BartConfig

    vocab_size: int = 50265
    hidden_size: int = 768
    num_hidden_layers: int = 6  # encoder layers
    num_decoder_layers: int | None = None  # default: num_hidden_layers
    num_attention_heads: int = 12
    intermediate_size: int | None = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 1024
    layer_norm_eps: float = 1e-5
    scale_embedding: bool = False
    hidden_dropout: float | int = 0.1
    attention_dropout: float | int = 0.1
    activation_dropout: float | int = 0.1
    classifier_dropout: float | int | None = 0.0
    is_encoder_decoder: bool = True
    pad_token_id: int | None = 1
    bos_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 2
    decoder_start_token_id: int | None = 2
    forced_bos_token_id: int | None = None
    forced_eos_token_id: int | list[int] | None = 2

    def __post_init__(self, **kwargs):
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_hidden_layers
        super().__post_init__(**kwargs)

    def validate_bart(self):
        """Part of ``@strict`` validation: one shared embedding for encoder, decoder and LM head."""
        if not self.tie_word_embeddings:
            raise ValueError(
                "tie_word_embeddings=False is not supported by BART / mBART (only True): the encoder, the "
                "decoder and the LM head share one token embedding"
            )

    @classmethod
    def from_reference(cls, reference: dict[str, Any]) -> "BartConfig":
        model_type = cls.reference_model_types[0]
        ref = cls.reference_config_class.from_dict(reference)
        _refuse_unsupported(reference, ref, model_type, cls.pre_norm)
        return cls(
            vocab_size=ref.vocab_size,
            hidden_size=ref.d_model,
            num_hidden_layers=ref.encoder_layers,
            num_decoder_layers=ref.decoder_layers,
            num_attention_heads=ref.encoder_attention_heads,
            intermediate_size=ref.encoder_ffn_dim,
            hidden_act=ref.activation_function,
            max_position_embeddings=ref.max_position_embeddings,
            scale_embedding=bool(ref.scale_embedding),
            hidden_dropout=ref.dropout,
            attention_dropout=ref.attention_dropout,
            activation_dropout=ref.activation_dropout,
            classifier_dropout=ref.classifier_dropout,
            initializer_range=ref.init_std,
            decoder_start_token_id=ref.decoder_start_token_id,
            forced_bos_token_id=reference.get("forced_bos_token_id"),
            forced_eos_token_id=reference.get("forced_eos_token_id", ref.forced_eos_token_id),
            reference_model_type=model_type,
            **shared_token_fields(reference),
        )

    def to_reference(self, architecture: str) -> transformers.PreTrainedConfig:
        model_type = self.reference_model_types[0]
        head_dim = self.hidden_size // self.num_attention_heads
        refused = {
            "norm_type": (self.norm_type, "layernorm"),
            "norm_bias": (self.norm_bias, True),
            "mlp_type": (self.mlp_type, "mlp"),
            "mlp_bias": (self.mlp_bias, True),
            "attention_bias": (self.attention_bias, True),
            "attention_out_bias": (self.attention_out_bias, True),
            "layer_norm_eps": (self.layer_norm_eps, 1e-5),
            "num_key_value_heads": (self.num_key_value_heads, self.num_attention_heads),
            "head_dim": (self.head_dim, head_dim),
            "attention_scaling": (self.attention_scaling, head_dim**-0.5),
            "rope_parameters": (self.rope_parameters, None),
        }
        for field, (value, supported) in refused.items():
            if value != supported:
                raise ConfigError(
                    f"{field}={value!r} cannot be expressed as a {model_type} config (supported: {supported!r})"
                )
        return self.reference_config_class(
            vocab_size=self.vocab_size,
            d_model=self.hidden_size,
            encoder_layers=self.num_hidden_layers,
            decoder_layers=self.num_decoder_layers,
            encoder_attention_heads=self.num_attention_heads,
            decoder_attention_heads=self.num_attention_heads,
            encoder_ffn_dim=self.intermediate_size,
            decoder_ffn_dim=self.intermediate_size,
            activation_function=self.hidden_act,
            max_position_embeddings=self.max_position_embeddings,
            scale_embedding=self.scale_embedding,
            dropout=self.hidden_dropout,
            attention_dropout=self.attention_dropout,
            activation_dropout=self.activation_dropout,
            classifier_dropout=self.classifier_dropout,
            init_std=self.initializer_range,
            use_cache=self.use_cache,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            decoder_start_token_id=self.decoder_start_token_id,
            forced_bos_token_id=self.forced_bos_token_id,
            forced_eos_token_id=self.forced_eos_token_id,
            tie_word_embeddings=True,
            architectures=[architecture],
        )


def _refuse_unsupported(
    reference: dict[str, Any], ref: transformers.PreTrainedConfig, model_type: str, pre_norm: bool
) -> None:
    """Raise :class:`ConfigError` for a checkpoint value the zoo's BART / mBART does not implement.

    The fairseq-era flags are absent from transformers 5's configs (which ignore them) but present in
    many checkpoints' ``config.json``; a value other than the one the model type implies changes the
    computation, so it is refused rather than silently ignored.
    """
    layout = "pre-LN blocks with a final LayerNorm" if pre_norm else "post-LN blocks without a final norm"
    fixed = {
        "normalize_before": (pre_norm, layout),
        "add_final_layer_norm": (pre_norm, layout),
        "add_bias_logits": (False, "the logits' only bias is final_logits_bias"),
        "normalize_embedding": (True, "layernorm_embedding is always applied"),
        "static_position_embeddings": (False, "learned positions only"),
    }
    for field, (supported, why) in fixed.items():
        if field in reference and reference[field] is not None and bool(reference[field]) != supported:
            raise ConfigError(
                f"{model_type} config field {field}={reference[field]!r} is not supported (only {supported!r}: "
                f"{why})"
            )
    for field in ("encoder_layerdrop", "decoder_layerdrop"):
        value = getattr(ref, field) or 0.0
        if value != 0.0:
            raise ConfigError(
                f"{model_type} config field {field}={value!r} is not supported (only 0.0): the zoo does not "
                "implement LayerDrop"
            )
    for encoder, decoder in (
        ("encoder_ffn_dim", "decoder_ffn_dim"),
        ("encoder_attention_heads", "decoder_attention_heads"),
    ):
        if getattr(ref, encoder) != getattr(ref, decoder):
            raise ConfigError(
                f"{model_type} config fields {encoder}={getattr(ref, encoder)!r} and {decoder}="
                f"{getattr(ref, decoder)!r} differ; only equal encoder and decoder sizes are supported"
            )
    if reference.get("tie_word_embeddings") is False:
        raise ConfigError(
            f"{model_type} config field tie_word_embeddings=False is not supported (only True): the encoder, "
            "the decoder and the LM head share one token embedding"
        )
