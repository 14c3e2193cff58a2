"""Qwen3: the Llama family's decoder with each query and key head RMS-normalised before the rotary positions.

token embeddings -> pre-RMSNorm decoder blocks (q/k-normed GQA, RoPE, SwiGLU) -> RMSNorm -> LM head.
"""

from __future__ import annotations

import torch
from torch import nn

from ...blocks import PreNormDecoderBlock
from ...causal_lm import CausalLMMixin
from ...hf_internals import ZooGenerationMixin
from ...layers import Attention, RMSNorm, RotaryEmbedding
from ..llama.model import LlamaModel, LlamaPreTrainedModel
from .config import Qwen3Config
from .weights import QWEN3_WEIGHT_MAP


class Qwen3Attention(Attention):
    """As :class:`~zoo.layers.Attention` except a per-head RMSNorm on the queries (``q_norm``) and keys
    (``k_norm``), over ``head_dim``, between the projection and the rotary positions."""

    def __init__(self, config, layer_idx: int, is_causal: bool):
        super().__init__(config, layer_idx, is_causal)
        self.q_norm = RMSNorm(self.head_dim, eps=config.layer_norm_eps)
        self.k_norm = RMSNorm(self.head_dim, eps=config.layer_norm_eps)

    def normalize_qk(self, query: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.q_norm(query), self.k_norm(key)


class Qwen3DecoderBlock(PreNormDecoderBlock):
    """As :class:`~zoo.blocks.PreNormDecoderBlock` except its attention is :class:`Qwen3Attention`."""

    def __init__(self, config, layer_idx: int):
        super().__init__(config, layer_idx)
        self.attn = Qwen3Attention(config, layer_idx, is_causal=True)


class Qwen3PreTrainedModel(LlamaPreTrainedModel):
    """As :class:`~zoo.models.llama.model.LlamaPreTrainedModel` except Qwen3's config, block and weight
    map."""

    config_class = Qwen3Config
    config: Qwen3Config
    _no_split_modules = ["Qwen3DecoderBlock"]
    weight_maps = {"qwen3": QWEN3_WEIGHT_MAP}


class Qwen3Model(Qwen3PreTrainedModel):
    """As :class:`~zoo.models.llama.model.LlamaModel` except its blocks are :class:`Qwen3DecoderBlock`
    (the forward is Llama's; a Qwen3 config has no sliding window)."""

    reference_architectures = {"qwen3": "Qwen3Model"}
    forward = LlamaModel.forward

    def __init__(self, config: Qwen3Config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.layers = nn.ModuleList(Qwen3DecoderBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.rotary = RotaryEmbedding(config)
        self.post_init()


class Qwen3ForCausalLM(CausalLMMixin, Qwen3PreTrainedModel, ZooGenerationMixin):
    base_model_class = Qwen3Model
    reference_architectures = {"qwen3": "Qwen3ForCausalLM"}
