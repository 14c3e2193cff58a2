"""Phi-3: the Llama family's decoder (token embeddings -> pre-RMSNorm blocks with RoPE / LongRoPE, GQA,
SwiGLU -> RMSNorm -> LM head) on a Phi-3 config and checkpoint layout.

LongRoPE needs nothing of its own: the shared ``RotaryEmbedding`` recomputes its frequencies per call
through transformers' ``dynamic_rope_update``, which takes the long factors when the largest position
id + 1 exceeds ``original_max_position_embeddings`` and the short ones otherwise, exactly as
transformers' ``Phi3RotaryEmbedding``. Generation drops the cache once, where the sequence first
crosses that length (cached keys were rotated with the short factors), as transformers' Phi3 does.
"""

from __future__ import annotations

from ...blocks import PreNormDecoderBlock
from ...causal_lm import CausalLMMixin
from ...hf_internals import OutputRecorder, ZooGenerationMixin
from ...layers import Attention
from ...modeling_base import ZooPreTrainedModel
from ..llama.model import LlamaModel
from .config import Phi3Config
from .weights import PHI3_WEIGHT_MAP


class Phi3PreTrainedModel(ZooPreTrainedModel):
    config_class = Phi3Config
    config: Phi3Config
    _no_split_modules = ["PreNormDecoderBlock"]
    _can_record_outputs = {
        "hidden_states": PreNormDecoderBlock,
        "attentions": OutputRecorder(Attention, index=1),
    }
    weight_maps = {"phi3": PHI3_WEIGHT_MAP}


class Phi3Model(Phi3PreTrainedModel, LlamaModel):
    """``LlamaModel``'s layers and forward on a :class:`Phi3Config` (class attributes from Phi-3's base)."""

    reference_architectures = {"phi3": "Phi3Model"}


class Phi3ForCausalLM(CausalLMMixin, Phi3PreTrainedModel, ZooGenerationMixin):
    """As transformers' Phi3: the step where the sequence first exceeds ``original_max_position_embeddings``
    recomputes it whole (LongRoPE switches to its long factors there), without the cache."""

    base_model_class = Phi3Model

    def generation_recompute_length(self) -> int | None:
        return self.config.original_max_position_embeddings

    reference_architectures = {"phi3": "Phi3ForCausalLM"}
