"""Gemma 3 (text): Gemma 2's decoder with each query and key head ``(1 + w)``-RMS-normalised before the
rotary positions, and a rotary embedding of its own for the sliding-window layers.

scaled token embeddings -> pre- and post-norm blocks (q/k-normed GQA, RoPE global or local, GeGLU) ->
``(1 + w)`` RMSNorm -> LM head (soft-capped logits only when the config asks).
"""

from __future__ import annotations

import torch

from ...hf_internals import OutputRecorder, ZooGenerationMixin
from ...layers import RotaryEmbedding
from ..gemma2.model import (
    Gemma2Attention,
    Gemma2DecoderBlock,
    Gemma2Model,
    Gemma2PreTrainedModel,
    GemmaCausalLMMixin,
    GemmaRMSNorm,
)
from .config import Gemma3Config
from .weights import GEMMA3_WEIGHT_MAP


class Gemma3Attention(Gemma2Attention):
    """As :class:`~zoo.models.gemma2.model.Gemma2Attention` except a per-head ``(1 + w)`` RMSNorm on the
    queries (``q_norm``) and keys (``k_norm``), over ``head_dim``, between the projection and the rotary
    positions."""

    def __init__(self, config, layer_idx: int, is_causal: bool = True):
        super().__init__(config, layer_idx, is_causal)
        self.q_norm = GemmaRMSNorm(self.head_dim, eps=config.layer_norm_eps)
        self.k_norm = GemmaRMSNorm(self.head_dim, eps=config.layer_norm_eps)

    def normalize_qk(self, query: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.q_norm(query), self.k_norm(key)


class Gemma3DecoderBlock(Gemma2DecoderBlock):
    """As :class:`~zoo.models.gemma2.model.Gemma2DecoderBlock` except its attention is
    :class:`Gemma3Attention`."""

    attention_class = Gemma3Attention


class _SlidingRopeView:
    """The config as the sliding layers' rotary reads it: every field the config's, except
    ``rope_parameters``, which are its ``sliding_rope_parameters``."""

    def __init__(self, config):
        self._config = config

    @property
    def rope_parameters(self) -> dict:
        return self._config.sliding_rope_parameters

    def standardize_rope_params(self) -> None:
        """transformers' rope initialisers call this; the zoo config is standard already."""

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "_config":  # copy / pickle probe a bare instance
            raise AttributeError(name)
        return getattr(self._config, name)


class Gemma3PreTrainedModel(Gemma2PreTrainedModel):
    """As :class:`~zoo.models.gemma2.model.Gemma2PreTrainedModel` except Gemma 3's config, block and
    weight map (the multimodal ``gemma3`` layout is listed only for its config to be refused by name)."""

    config_class = Gemma3Config
    config: Gemma3Config
    _no_split_modules = ["Gemma3DecoderBlock"]
    _can_record_outputs = {
        "hidden_states": Gemma3DecoderBlock,
        "attentions": OutputRecorder(Gemma3Attention, index=1),
    }
    weight_maps = {"gemma3_text": GEMMA3_WEIGHT_MAP, "gemma3": GEMMA3_WEIGHT_MAP}


class Gemma3Model(Gemma3PreTrainedModel, Gemma2Model):
    """As :class:`~zoo.models.gemma2.model.Gemma2Model` except its blocks are :class:`Gemma3DecoderBlock`
    and the sliding layers take their positions from a second rotary (``sliding_rope_parameters``)."""

    reference_architectures = {"gemma3_text": "Gemma3TextModel", "gemma3": "Gemma3Model"}
    block_class = Gemma3DecoderBlock

    def build_rotary(self, config) -> None:
        self.rotary = RotaryEmbedding(config)
        self.sliding_rotary = RotaryEmbedding(_SlidingRopeView(config))

    def position_embeddings(
        self, hidden_states, position_ids
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """cos / sin tables per layer type: the global rotary for full attention, the local one for sliding."""
        rotaries = {"full_attention": self.rotary, "sliding_attention": self.sliding_rotary}
        return {
            layer_type: rotaries[layer_type](hidden_states, position_ids)
            for layer_type in set(self.config.layer_types)
        }


class Gemma3ForCausalLM(GemmaCausalLMMixin, Gemma3PreTrainedModel, ZooGenerationMixin):
    base_model_class = Gemma3Model
    reference_architectures = {"gemma3_text": "Gemma3ForCausalLM", "gemma3": "Gemma3ForConditionalGeneration"}
