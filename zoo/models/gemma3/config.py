"""Gemma 3 (text) configuration: Gemma 2's fields, Gemma 3's defaults, a second rotary for the sliding
layers, and the transformers ``Gemma3TextConfig`` translation.

Gemma 3 is Gemma 2 with a per-head ``(1 + w)`` RMSNorm on queries and keys, five sliding-window layers to
each global one, and two rotary embeddings: the global layers' ``rope_parameters`` (base 1e6, scaled in
the larger models) and the sliding layers' ``sliding_rope_parameters`` (transformers 5.24 keeps both in
``rope_parameters``, keyed ``full_attention`` / ``sliding_attention``; older checkpoints say
``rope_theta`` / ``rope_local_base_freq``). No soft-capping by default.
"""

import math
from typing import Any

import transformers
from huggingface_hub.dataclasses import strict

from ...configuration import ROPE_TYPES, shared_token_fields
from ...errors import ConfigError
from ..gemma2.config import Gemma2Config, refuse_unsupported


@strict
class Gemma3Config(Gemma2Config):
    """As :class:`~zoo.models.gemma2.config.Gemma2Config` except Gemma 3's defaults (those of transformers'
    ``Gemma3TextConfig``), ``sliding_rope_parameters`` (the sliding layers' rotary; ``rope_parameters`` is
    the global layers'), and no attention soft-capping: transformers' Gemma 3 reads
    ``attn_logit_softcapping`` but never applies it, so it must stay None here.

    ``layer_norm_eps`` is also the epsilon of the per-head query / key norms (transformers' ``rms_norm_eps``).
    """

    model_type = "zoo_gemma3"
    # "gemma3" (the multimodal Gemma3ForConditionalGeneration) is read only to refuse it by name.
    reference_model_types = ("gemma3_text", "gemma3")
    zoo_model_types = ("zoo_gemma3",)
    sliding_window_pattern = 6

    vocab_size: int = 262208
    max_position_embeddings: int = 131072
    sliding_window: int | None = 4096
    attn_logit_softcapping: float | int | None = None
    final_logit_softcapping: float | int | None = None
    sliding_rope_parameters: dict | None = None

    def __post_init__(self, **kwargs):
        if self.rope_parameters is None:
            self.rope_parameters = {"rope_type": "default", "rope_theta": 1000000.0}
        if self.sliding_rope_parameters is None:
            self.sliding_rope_parameters = {"rope_type": "default", "rope_theta": 10000.0}
        super().__post_init__(**kwargs)

    def validate_gemma3(self):
        if self.attn_logit_softcapping is not None:
            raise ValueError(
                f"attn_logit_softcapping={self.attn_logit_softcapping!r} is not supported by Gemma 3 (only None): "
                "transformers' Gemma3 declares it but never applies it, so no reference says what it means"
            )
        if self.reference_model_type != "gemma3_text":
            raise ValueError(
                f"reference_model_type={self.reference_model_type!r} is not supported (only 'gemma3_text'): "
                "the zoo implements Gemma 3's text model"
            )
        rope = self.sliding_rope_parameters
        rope_type = rope.get("rope_type", "default")
        if rope_type not in ROPE_TYPES:
            raise ValueError(
                f"sliding_rope_parameters['rope_type']={rope_type!r} is not one of {', '.join(ROPE_TYPES)}"
            )
        theta = rope.get("rope_theta")
        if not (isinstance(theta, (int, float)) and math.isfinite(theta) and theta > 0):
            raise ValueError(
                f"sliding_rope_parameters['rope_theta'] must be a positive finite number, got {theta!r}"
            )

    @classmethod
    def from_reference(cls, reference: dict[str, Any]) -> "Gemma3Config":
        if reference.get("model_type") == "gemma3":
            raise ConfigError(
                "model_type='gemma3' (Gemma3ForConditionalGeneration: a multimodal Gemma 3 with a vision tower, "
                f"vision_config={'set' if reference.get('vision_config') else 'default SigLIP'}) is not supported; "
                "the zoo's gemma3 family reads the text-only model_type 'gemma3_text' (Gemma3ForCausalLM, e.g. "
                "google/gemma-3-270m / gemma-3-1b)"
            )
        ref = transformers.Gemma3TextConfig.from_dict(reference)
        refuse_unsupported("Gemma3", ref)
        if ref.attn_logit_softcapping is not None:
            raise ConfigError(
                f"Gemma3 config field attn_logit_softcapping={ref.attn_logit_softcapping!r} is not supported "
                "(only None): transformers' Gemma3 never applies it"
            )
        rope = ref.rope_parameters
        return cls(
            **cls.reference_fields(ref),
            rope_parameters=dict(rope["full_attention"]),
            sliding_rope_parameters=dict(rope["sliding_attention"]),
            reference_model_type="gemma3_text",
            **shared_token_fields(reference),
        )

    def to_reference(self, architecture: str) -> transformers.PreTrainedConfig:
        rope = {
            "full_attention": dict(self.rope_parameters),
            "sliding_attention": dict(self.sliding_rope_parameters),
        }
        return transformers.Gemma3TextConfig(
            **self.shared_reference_fields(architecture), rope_parameters=rope
        )
