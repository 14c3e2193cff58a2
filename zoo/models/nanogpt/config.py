"""nanoGPT's configuration: GPT-2's architecture under nanoGPT's names and defaults."""

from types import MappingProxyType
from typing import Any

from huggingface_hub.dataclasses import strict

from ...errors import ConfigError
from ..gpt2.config import GPT2Config

# nanoGPT's ``model_args`` names -> the shared field names (also usable as config attributes).
NANOGPT_NAMES = {
    "block_size": "max_position_embeddings",
    "n_layer": "num_hidden_layers",
    "n_head": "num_attention_heads",
    "n_embd": "hidden_size",
}


@strict
class GPTConfig(GPT2Config):
    """GPT-2's config with nanoGPT's defaults; ``bias`` and ``dropout`` are nanoGPT's single switches.

    ``block_size``, ``n_layer``, ``n_head`` and ``n_embd`` are accepted as aliases of the shared fields.
    ``bias`` sets ``attention_bias``, ``mlp_bias`` and ``norm_bias`` and ``dropout`` sets
    ``hidden_dropout``, ``attention_dropout`` and ``embedding_dropout``, unless those are given.
    """

    model_type = "zoo_gpt"
    zoo_model_types = ("zoo_gpt",)
    attribute_map = NANOGPT_NAMES
    field_ranges = MappingProxyType({**GPT2Config.field_ranges, "dropout": "probability"})

    vocab_size: int = 50304  # GPT-2's 50257 rounded up to a multiple of 64, as nanoGPT does
    max_position_embeddings: int = 1024
    hidden_act: str = "gelu"  # nanoGPT's exact nn.GELU(); GPT-2 checkpoints use "gelu_new" (tanh)
    bias: bool = True
    dropout: float | int = 0.0
    attention_bias: bool | None = None
    mlp_bias: bool | None = None
    norm_bias: bool | None = None
    hidden_dropout: float | int | None = None
    attention_dropout: float | int | None = None
    embedding_dropout: float | int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None

    def __post_init__(self, **kwargs):
        # Aliases first: the shared defaults derived below (intermediate_size) read these fields.
        for alias, field in NANOGPT_NAMES.items():
            if alias in kwargs:
                setattr(self, field, kwargs.pop(alias))
        for field in ("attention_bias", "mlp_bias", "norm_bias"):
            if getattr(self, field) is None:
                setattr(self, field, self.bias)
        for field in ("hidden_dropout", "attention_dropout", "embedding_dropout"):
            if getattr(self, field) is None:
                setattr(self, field, self.dropout)
        super().__post_init__(**kwargs)

    @classmethod
    def from_nanogpt(cls, model_args: dict[str, Any], **overrides) -> "GPTConfig":
        """The config of a nanoGPT checkpoint's ``model_args`` (``n_layer``, ``n_head``, ``n_embd``, ...)."""
        valid = {*NANOGPT_NAMES, "vocab_size", "bias", "dropout"}
        unknown = sorted(set(model_args) - valid)
        if unknown:
            raise ConfigError(
                f"nanoGPT model_args {', '.join(unknown)} are not known; valid: {', '.join(sorted(valid))}"
            )
        return cls(**{**model_args, **overrides})

    def to_reference(self, architecture: str):
        if not (self.attention_bias and self.mlp_bias and self.norm_bias):
            raise ConfigError(
                "the GPT-2 layout has every bias; a GPT with bias=False exports only as a nanoGPT "
                "state dict (GPT.nanogpt_state_dict())"
            )
        return super().to_reference(architecture)
