"""GLM configuration: FlagAI's GLM (GLM-large-ch, GLM-large-en, GLM-10b-ch) and the Hub's THUDM/glm-*.

Reference configs are recognised under the model_type key ``"glm"``: the Hub repositories write
``"model_type": "glm"``; FlagAI's own ``config.json`` has no model_type and is recognised by its
field names (``num_layers`` and ``max_sequence_length``). Both use FlagAI's field names.
"""

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

from huggingface_hub.dataclasses import strict

from ...configuration import ZooConfig, shared_token_fields
from ...errors import ConfigError

GLM_REFERENCE_TYPE = "glm"
_REQUIRED = ("num_layers", "vocab_size", "hidden_size", "num_attention_heads", "max_sequence_length")


def is_flagai_glm_config(data: dict[str, Any]) -> bool:
    """FlagAI's GLM ``config.json``: no model_type, FlagAI's field names."""
    return "model_type" not in data and all(key in data for key in ("num_layers", "max_sequence_length"))


class FlagAIConfigFile(dict):
    """FlagAI reads GLM's config.json as plain JSON (there is no transformers config class for it)."""

    def save_pretrained(self, save_directory) -> None:
        Path(save_directory, "config.json").write_text(json.dumps(self, indent=2, sort_keys=True) + "\n")


@strict
class GLMConfig(ZooConfig):
    model_type = "zoo_glm"
    reference_model_types = (GLM_REFERENCE_TYPE,)
    zoo_model_types = ("zoo_glm",)
    field_ranges = MappingProxyType(
        {**ZooConfig.field_ranges, "embedding_dropout": "probability", "attention_scale": "positive"}
    )

    vocab_size: int = 50048
    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    hidden_act: str = "gelu_new"  # FlagAI's gelu_impl is the tanh approximation
    # FlagAI's max_sequence_length + 1 with block position encoding (its table sizes), else equal.
    max_position_embeddings: int = 1025
    layer_norm_eps: float = 1e-5
    embedding_dropout: float | int = 0.1
    # Add a second learned table for the block position (position_ids of shape (batch, 2, seq)).
    block_position_encoding: bool = True
    # FlagAI's attention_scale subtracts the row max before softmax: a numerical trick softmax is
    # invariant to, kept for export only.
    attention_scale: float | int = 1.0
    # Special tokens of the GLM tokenizers (not in FlagAI's config.json; set them for blank filling).
    mask_token_id: int | None = None
    smask_token_id: int | None = None
    gmask_token_id: int | None = None
    sop_token_id: int | None = None
    eop_token_id: int | None = None

    @property
    def blank_token_ids(self) -> list[int]:
        """Ids of ``[MASK]``, ``[sMASK]`` and ``[gMASK]`` that are set."""
        return [i for i in (self.mask_token_id, self.smask_token_id, self.gmask_token_id) if i is not None]

    @classmethod
    def from_reference(cls, reference: dict[str, Any]) -> "GLMConfig":
        missing = [key for key in _REQUIRED if key not in reference]
        if missing:
            raise ConfigError(f"GLM config lacks {', '.join(missing)} (FlagAI's field names are expected)")
        unsupported = {
            "relative_encoding": (reference.get("relative_encoding", False), False),
            "spell_length": (reference.get("spell_length"), None),  # p-tuning prompt encoder
        }
        for field, (value, supported) in unsupported.items():
            if value != supported:
                raise ConfigError(f"GLM config field {field}={value!r} is not supported (only {supported!r})")
        block = reference.get("block_position_encoding", True)
        return cls(
            vocab_size=reference["vocab_size"],
            hidden_size=reference["hidden_size"],
            num_hidden_layers=reference["num_layers"],
            num_attention_heads=reference["num_attention_heads"],
            max_position_embeddings=reference["max_sequence_length"] + int(block),
            block_position_encoding=block,
            embedding_dropout=reference.get("embedding_dropout_prob", 0.1),
            attention_dropout=reference.get("attention_dropout_prob", 0.1),
            hidden_dropout=reference.get("output_dropout_prob", 0.1),
            attention_scale=reference.get("attention_scale", 1.0),
            **shared_token_fields(reference),
        )

    def to_reference(self, architecture: str) -> FlagAIConfigFile:
        """FlagAI's config.json (what its ``init_from_json`` reads), tagged as the Hub layout."""
        if self.intermediate_size != 4 * self.hidden_size or self.hidden_act != "gelu_new":
            raise ConfigError("FlagAI's GLM has a 4 * hidden_size tanh-GELU MLP; this config differs")
        return FlagAIConfigFile(
            model_type=GLM_REFERENCE_TYPE,
            architectures=[architecture],
            num_layers=self.num_hidden_layers,
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_attention_heads=self.num_attention_heads,
            max_sequence_length=self.max_position_embeddings - int(self.block_position_encoding),
            block_position_encoding=self.block_position_encoding,
            embedding_dropout_prob=self.embedding_dropout,
            attention_dropout_prob=self.attention_dropout,
            output_dropout_prob=self.hidden_dropout,
            attention_scale=self.attention_scale,
            relative_encoding=False,
            output_predict=True,
            parallel_output=True,
            max_memory_length=0,
            checkpoint_activations=False,
            checkpoint_num_layers=1,
            spell_length=None,
            spell_func="lstm",
            initializer_range=self.initializer_range,
            pad_token_id=self.pad_token_id,
            tie_word_embeddings=True,
        )
