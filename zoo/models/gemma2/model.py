"""Gemma 2: scaled token embeddings -> pre- and post-norm decoder blocks (GQA with soft-capped scores,
sliding-window and global layers, RoPE, GeGLU) -> ``(1 + w)`` RMSNorm -> LM head with soft-capped logits.

The masks and caches are transformers': one causal and one sliding-window mask (``zoo.hf_internals``), a
``DynamicCache`` built from the config, whose ``layer_types`` and ``sliding_window`` give the sliding
layers a window-sized cache as transformers' Gemma 2 has them.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

from ...causal_lm import CausalLMMixin
from ...decoding import decoder_inputs
from ...hf_internals import (
    Cache,
    GradientCheckpointingLayer,
    OutputRecorder,
    ZooGenerationMixin,
    can_return_tuple,
    capture_outputs,
    causal_mask,
    checked_forward,
    sliding_window_causal_mask,
)
from ...layers import Attention, RMSNorm, RotaryEmbedding, build_mlp
from ...modeling_base import ZooPreTrainedModel
from .config import Gemma2Config
from .weights import GEMMA2_WEIGHT_MAP

MASKS = {"full_attention": causal_mask, "sliding_attention": sliding_window_causal_mask}


class GemmaRMSNorm(RMSNorm):
    """As :class:`~zoo.layers.RMSNorm` except the weight is an offset from one (``x * (1 + w)``, initialised
    to zero) and the product is taken in float32 before the cast back, as transformers' Gemma norms."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        normed = hidden_states.float()
        normed = normed * torch.rsqrt(normed.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * (1.0 + self.weight.float())).type_as(hidden_states)


class ScaledEmbedding(nn.Embedding):
    """As ``nn.Embedding`` except the vectors are multiplied by ``sqrt(hidden_size)`` rounded to the weight
    dtype, as transformers' Gemma embeddings (inputs_embeds passed in are not scaled, there as here)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None):
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx)
        self.scale = embedding_dim**0.5

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        scale = torch.tensor(self.scale, dtype=self.weight.dtype, device=self.weight.device)
        return super().forward(input_ids) * scale


class Gemma2Attention(Attention):
    """As :class:`~zoo.layers.Attention` except the layer's window (``sliding_window`` on the
    ``sliding_attention`` layers, for kernels that take one) and the scores' tanh soft-cap
    (``attn_logit_softcapping``; under sdpa, which cannot cap, the shared attention runs the eager maths)."""

    def __init__(self, config, layer_idx: int, is_causal: bool = True):
        super().__init__(config, layer_idx, is_causal)
        self.layer_type = config.layer_types[layer_idx]
        self.sliding_window = config.sliding_window if self.layer_type == "sliding_attention" else None
        self.softcap = config.attn_logit_softcapping

    def forward(self, hidden_states, attention_mask=None, position_embeddings=None, cache=None, **kwargs):
        return super().forward(
            hidden_states,
            attention_mask,
            position_embeddings=position_embeddings,
            cache=cache,
            sliding_window=self.sliding_window,
            softcap=self.softcap,
            **kwargs,
        )


class Gemma2DecoderBlock(GradientCheckpointingLayer):
    """As :class:`~zoo.blocks.PreNormDecoderBlock` except each sub-layer's output is normed too before the
    residual sum: ``h = x + post_attn_norm(attn(attn_norm(x))); out = h + post_mlp_norm(mlp(mlp_norm(h)))``,
    with ``(1 + w)`` RMSNorms."""

    attention_class = Gemma2Attention

    def __init__(self, config, layer_idx: int):
        super().__init__()
        self.layer_type = config.layer_types[layer_idx]
        self.attn_norm = GemmaRMSNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attn = self.attention_class(config, layer_idx, is_causal=True)
        self.post_attn_norm = GemmaRMSNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp_norm = GemmaRMSNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = build_mlp(config)
        self.post_mlp_norm = GemmaRMSNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> torch.Tensor:
        attn_output, _ = self.attn(
            self.attn_norm(hidden_states),
            attention_mask,
            position_embeddings=position_embeddings,
            cache=cache,
            **kwargs,
        )
        hidden_states = hidden_states + self.dropout(self.post_attn_norm(attn_output))
        mlp_output = self.post_mlp_norm(self.mlp(self.mlp_norm(hidden_states)))
        return hidden_states + self.dropout(mlp_output)


class Gemma2PreTrainedModel(ZooPreTrainedModel):
    config_class = Gemma2Config
    config: Gemma2Config
    _no_split_modules = ["Gemma2DecoderBlock"]
    _can_record_outputs = {
        "hidden_states": Gemma2DecoderBlock,
        "attentions": OutputRecorder(Gemma2Attention, index=1),
    }
    weight_maps = {"gemma2": GEMMA2_WEIGHT_MAP}

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, GemmaRMSNorm):
            init.zeros_(module.weight)  # (1 + w): the identity scale


class Gemma2Model(Gemma2PreTrainedModel):
    """Scaled embeddings, the blocks (each with the mask of its layer type), the final norm."""

    reference_architectures = {"gemma2": "Gemma2Model"}
    block_class = Gemma2DecoderBlock

    def __init__(self, config: Gemma2Config):
        super().__init__(config)
        self.embed_tokens = ScaledEmbedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList(self.block_class(config, i) for i in range(config.num_hidden_layers))
        self.norm = GemmaRMSNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.build_rotary(config)
        self.post_init()

    def build_rotary(self, config) -> None:
        self.rotary = RotaryEmbedding(config)

    def position_embeddings(
        self, hidden_states, position_ids
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """cos / sin tables per layer type (Gemma 2: one rotary for every layer)."""
        rotary = self.rotary(hidden_states, position_ids)
        return dict.fromkeys(set(self.config.layer_types), rotary)

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
        if isinstance(attention_mask, dict):  # generate built them (a static cache): one per layer type
            masks = attention_mask
        else:
            masks = {
                layer_type: MASKS[layer_type](
                    config=self.config,
                    inputs_embeds=inputs_embeds,
                    attention_mask=attention_mask,
                    cache=cache,
                    position_ids=position_ids,
                )
                for layer_type in set(self.config.layer_types)
            }
        hidden_states = inputs_embeds
        rotary = self.position_embeddings(hidden_states, position_ids)
        for block in self.layers:
            hidden_states = block(
                hidden_states,
                masks[block.layer_type],
                position_embeddings=rotary[block.layer_type],
                cache=cache,
                **kwargs,
            )
        return BaseModelOutputWithPast(
            last_hidden_state=self.norm(hidden_states), cache=cache if use_cache else None
        )


class GemmaCausalLMMixin(CausalLMMixin):
    """As :class:`~zoo.causal_lm.CausalLMMixin` except the logits are tanh soft-capped when the config sets
    ``final_logit_softcapping``; the loss is then transformers' on the capped logits, not the chunked one
    (``zoo.fused_loss`` knows no cap)."""

    def fuses_loss(self, lm_head, logits_to_keep=0) -> bool:
        return self.config.final_logit_softcapping is None and super().fuses_loss(lm_head, logits_to_keep)

    @checked_forward
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        cap = self.config.final_logit_softcapping
        inputs = dict(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
        )
        if cap is None:
            return super().forward(**inputs, labels=labels, **kwargs)
        output = super().forward(**inputs, **kwargs)
        logits = torch.tanh(output.logits / cap) * cap
        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs
            )
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=output.cache,
            hidden_states=output.hidden_states,
            attentions=output.attentions,
        )


class Gemma2ForCausalLM(GemmaCausalLMMixin, Gemma2PreTrainedModel, ZooGenerationMixin):
    base_model_class = Gemma2Model
    reference_architectures = {"gemma2": "Gemma2ForCausalLM"}
