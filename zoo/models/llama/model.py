"""Llama family: token embeddings -> pre-RMSNorm decoder blocks (RoPE, GQA, SwiGLU) -> RMSNorm -> LM head."""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPast

from ...blocks import PreNormDecoderBlock
from ...causal_lm import CausalLMMixin
from ...decoding import decoder_inputs
from ...hf_internals import (
    Cache,
    OutputRecorder,
    ZooGenerationMixin,
    capture_outputs,
    causal_mask,
    checked_forward,
    sliding_window_causal_mask,
)
from ...layers import Attention, RMSNorm, RotaryEmbedding
from ...modeling_base import ZooPreTrainedModel
from .config import LlamaConfig
from .weights import LLAMA_WEIGHT_MAP


class LlamaPreTrainedModel(ZooPreTrainedModel):
    config_class = LlamaConfig
    config: LlamaConfig
    _no_split_modules = ["PreNormDecoderBlock"]
    _can_record_outputs = {
        "hidden_states": PreNormDecoderBlock,
        "attentions": OutputRecorder(Attention, index=1),
    }
    weight_maps = {"llama": LLAMA_WEIGHT_MAP, "mistral": LLAMA_WEIGHT_MAP, "qwen2": LLAMA_WEIGHT_MAP}


class LlamaModel(LlamaPreTrainedModel):
    reference_architectures = {"llama": "LlamaModel", "mistral": "MistralModel", "qwen2": "Qwen2Model"}

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.layers = nn.ModuleList(PreNormDecoderBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.rotary = RotaryEmbedding(config)
        self.post_init()

    @checked_forward
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        inputs_embeds, cache, position_ids, use_cache = decoder_inputs(
            self, input_ids, inputs_embeds, cache, position_ids, use_cache, kwargs
        )

        make_mask = sliding_window_causal_mask if self.config.sliding_window else causal_mask
        mask = make_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=cache,
            position_ids=position_ids,
        )
        hidden_states = inputs_embeds
        rotary = self.rotary(hidden_states, position_ids)
        for block in self.layers:
            hidden_states = block(hidden_states, mask, position_embeddings=rotary, cache=cache, **kwargs)
        return BaseModelOutputWithPast(
            last_hidden_state=self.norm(hidden_states), cache=cache if use_cache else None
        )


class LlamaForCausalLM(CausalLMMixin, LlamaPreTrainedModel, ZooGenerationMixin):
    base_model_class = LlamaModel
    reference_architectures = {
        "llama": "LlamaForCausalLM",
        "mistral": "MistralForCausalLM",
        "qwen2": "Qwen2ForCausalLM",
    }
