"""ModernBERT: token embeddings -> LayerNorm -> pre-LN encoder blocks (rotary positions, global or
banded local attention, GeGLU) -> final LayerNorm (-> masked-LM head).

Every block is bidirectional; a "sliding_attention" block sees only the keys within
``config.sliding_window`` positions of each query, on either side. Global and local blocks rotate with
their own base (``rope_parameters["rope_theta"]`` / ``local_rope_theta``). As transformers' sdpa and eager
paths, positions count from 0 in every row (left padding shifts them) and padding is masked out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput

from ...fused_loss import linear_cross_entropy, loss_kwargs
from ...hf_internals import (
    GradientCheckpointingLayer,
    OutputRecorder,
    can_return_tuple,
    capture_outputs,
    checked_forward,
    packed_bidirectional_mask,
)
from ...layers import Attention, GatedMLP, RotaryEmbedding, build_norm
from ...modeling_base import ZooPreTrainedModel
from .config import REFERENCE_MODEL_TYPE, ModernBertConfig
from .weights import MODERNBERT_WEIGHT_MAP

GLOBAL, LOCAL = "full_attention", "sliding_attention"


class ModernBertMLP(GatedMLP):
    """As :class:`~zoo.layers.GatedMLP` (GeGLU: ``down(act(gate(x)) * up(x))``) except a dropout
    (``mlp_dropout``) before the down projection."""

    def __init__(self, config: ModernBertConfig):
        super().__init__(
            config.hidden_size, config.intermediate_size, config.hidden_act, bias=config.mlp_bias
        )
        self.dropout = nn.Dropout(config.mlp_dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.down(self.dropout(self.act(self.gate(hidden_states)) * self.up(hidden_states)))


class ModernBertBlock(GradientCheckpointingLayer):
    """As :class:`~zoo.blocks.PreNormDecoderBlock` (``h = x + attn(norm(x)); out = h + mlp(norm(h))``) except:
    bidirectional attention, within a band for a "sliding_attention" layer; no norm before the first
    layer's attention (the embedding norm precedes it); dropout ``attention_dropout`` on the attention
    output and the MLP's own (:class:`ModernBertMLP`) instead of one residual dropout."""

    def __init__(self, config: ModernBertConfig, layer_idx: int):
        super().__init__()
        self.attention_type = config.layer_types[layer_idx]
        self.attn_norm = build_norm(config) if layer_idx > 0 else nn.Identity()
        self.attn = Attention(config, layer_idx, is_causal=False)
        self.attn_output_dropout = nn.Dropout(config.attention_dropout)
        self.mlp_norm = build_norm(config)
        self.mlp = ModernBertMLP(config)
        # What transformers hands flash attention (inclusive bounds); sdpa and eager read the mask.
        self.sliding_window = config.sliding_window + 1 if self.attention_type == LOCAL else None

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs,
    ) -> torch.Tensor:
        attn_output, _ = self.attn(
            self.attn_norm(hidden_states),
            attention_mask,
            position_embeddings=position_embeddings,
            sliding_window=self.sliding_window,
            **kwargs,
        )
        hidden_states = hidden_states + self.attn_output_dropout(attn_output)
        return hidden_states + self.mlp(self.mlp_norm(hidden_states))


@dataclass(frozen=True)
class _LocalRotaryConfig:
    """What :class:`~zoo.layers.RotaryEmbedding` reads, with the local layers' base."""

    rope_parameters: dict
    head_dim: int
    max_position_embeddings: int


def local_rotary(config: ModernBertConfig) -> RotaryEmbedding:
    """The shared rotary layer over ``local_rope_theta`` (the local layers' frequencies)."""
    return RotaryEmbedding(
        _LocalRotaryConfig(
            rope_parameters={"rope_type": "default", "rope_theta": config.local_rope_theta},
            head_dim=config.head_dim,
            max_position_embeddings=config.max_position_embeddings,
        )
    )


class ModernBertPredictionHead(nn.Module):
    """As BERT's ``MaskedLMTransform`` (``norm(act(dense(h)))``) except the dense bias is
    ``classifier_bias``, the activation ``classifier_activation`` and the norm's bias ``norm_bias``; shared
    by the masked LM and the classifiers (transformers' ``ModernBertPredictionHead``)."""

    def __init__(self, config: ModernBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size, bias=config.classifier_bias)
        self.act = ACT2FN[config.classifier_activation]
        self.norm = build_norm(config)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.norm(self.act(self.dense(hidden_states)))


class ModernBertPreTrainedModel(ZooPreTrainedModel):
    config_class = ModernBertConfig
    config: ModernBertConfig
    _no_split_modules = ["ModernBertBlock"]
    _can_record_outputs = {
        "hidden_states": ModernBertBlock,
        "attentions": OutputRecorder(Attention, index=1),
    }
    weight_maps = {REFERENCE_MODEL_TYPE: MODERNBERT_WEIGHT_MAP}


class ModernBertModel(ModernBertPreTrainedModel):
    reference_architectures = {REFERENCE_MODEL_TYPE: "ModernBertModel"}

    def __init__(self, config: ModernBertConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.embed_norm = build_norm(config)
        self.embed_dropout = nn.Dropout(config.embedding_dropout)
        self.layers = nn.ModuleList(ModernBertBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = build_norm(config)
        self.rotary = RotaryEmbedding(config)
        self.local_rotary = local_rotary(config)
        self.post_init()

    @checked_forward
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutput:
        """``attention_mask``: a (batch, key) padding mask, or a (batch, 1, query, key) mask used as is
        (by every layer, global and local).

        A packed batch (``tasks.packing``): ``position_ids`` restarting at each record's first position
        and no ``attention_mask``; each token then attends to its own record only (and, in local layers,
        to its band within it).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        kwargs.pop("output_attentions", None)
        kwargs.pop("output_hidden_states", None)
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        hidden_states = self.embed_dropout(self.embed_norm(inputs_embeds))
        if position_ids is None:
            position_ids = torch.arange(hidden_states.shape[1], device=hidden_states.device)[None]
        present = set(self.config.layer_types)
        masks, rotary = {}, {}
        for layer_type, rotary_layer in ((GLOBAL, self.rotary), (LOCAL, self.local_rotary)):
            if layer_type in present:
                masks[layer_type] = packed_bidirectional_mask(
                    config=self.config,
                    inputs_embeds=hidden_states,
                    attention_mask=attention_mask,
                    position_ids=position_ids,
                    sliding_window=layer_type == LOCAL,
                )
                rotary[layer_type] = rotary_layer(hidden_states, position_ids)
        for block in self.layers:
            hidden_states = block(
                hidden_states,
                masks[block.attention_type],
                position_embeddings=rotary[block.attention_type],
                **kwargs,
            )
        return BaseModelOutput(last_hidden_state=self.norm(hidden_states))


class ModernBertForMaskedLM(ModernBertPreTrainedModel):
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    reference_architectures = {REFERENCE_MODEL_TYPE: "ModernBertForMaskedLM"}

    def __init__(self, config: ModernBertConfig):
        super().__init__(config)
        self.model = ModernBertModel(config)
        self.head = ModernBertPredictionHead(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=config.decoder_bias)
        self.post_init()

    @checked_forward
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        """``labels`` hold the original ids at masked positions and -100 elsewhere."""
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            **kwargs,
        )
        loss = None
        if labels is not None and self.fuses_loss(self.lm_head):
            loss, logits = linear_cross_entropy(
                self.head(outputs.last_hidden_state), self.lm_head, labels, shift=False, **loss_kwargs(kwargs)
            )
        else:
            logits = self.lm_head(self.head(outputs.last_hidden_state))
            if labels is not None:
                loss = self.loss_function(
                    logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs
                )
        return MaskedLMOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
