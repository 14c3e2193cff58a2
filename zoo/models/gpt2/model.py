"""GPT-2: token + learned position embeddings -> pre-LN decoder blocks -> final LayerNorm -> tied LM head."""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import initialization as init
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
)
from ...layers import MLP, Attention, build_norm
from ...modeling_base import ZooPreTrainedModel
from .config import GPT2Config
from .weights import GPT2_WEIGHT_MAP


class GPT2PreTrainedModel(ZooPreTrainedModel):
    config_class = GPT2Config
    config: GPT2Config
    _no_split_modules = ["PreNormDecoderBlock"]
    _can_record_outputs = {
        "hidden_states": PreNormDecoderBlock,
        "attentions": OutputRecorder(Attention, index=1),
    }
    weight_maps = {"gpt2": GPT2_WEIGHT_MAP}

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        # GPT-2's scaled init: residual projections get std / sqrt(2 * layers).
        std = self.config.initializer_range / math.sqrt(2 * self.config.num_hidden_layers)
        if isinstance(module, Attention):
            init.normal_(module.out.weight, mean=0.0, std=std)
        elif isinstance(module, MLP):
            init.normal_(module.down.weight, mean=0.0, std=std)


class GPT2Model(GPT2PreTrainedModel):
    reference_architectures = {"gpt2": "GPT2Model"}

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.dropout = nn.Dropout(config.embedding_dropout)
        self.layers = nn.ModuleList(PreNormDecoderBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = build_norm(config)
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
        token_type_ids: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        inputs_embeds, cache, position_ids, use_cache = decoder_inputs(
            self, input_ids, inputs_embeds, cache, position_ids, use_cache, kwargs
        )

        hidden_states = inputs_embeds + self.embed_positions(position_ids)
        if token_type_ids is not None:  # GPT-2 embeds token types with the token embedding matrix
            hidden_states = hidden_states + self.embed_tokens(token_type_ids)
        hidden_states = self.dropout(hidden_states)

        mask = causal_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=cache,
            position_ids=position_ids,
        )
        for block in self.layers:
            hidden_states = block(hidden_states, mask, cache=cache, **kwargs)
        return BaseModelOutputWithPast(
            last_hidden_state=self.norm(hidden_states), cache=cache if use_cache else None
        )


class GPT2ForCausalLM(CausalLMMixin, GPT2PreTrainedModel, ZooGenerationMixin):
    base_model_class = GPT2Model
    reference_architectures = {"gpt2": "GPT2LMHeadModel"}
