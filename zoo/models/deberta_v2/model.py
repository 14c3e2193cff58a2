"""DeBERTa-v2 / v3: word (+ absolute position) (+ token-type) embeddings -> post-LN encoder blocks with
disentangled attention (-> ContextPooler | masked-LM head).

The blocks are BERT's (``PostNormEncoderBlock``: norm after each residual addition, GELU MLP); only the
attention differs (:class:`DisentangledAttention`). The relative-position embeddings (and their LayerNorm)
are shared by every layer and live in the model, as the relative positions of the sequence, which are
computed once per forward.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithPooling

from ...blocks import PostNormEncoderBlock
from ...hf_internals import OutputRecorder, capture_outputs, checked_forward, packed_sequence_ids
from ...layers import Attention, positions_after_cache
from ...layers.attention import attend
from ...modeling_base import ZooPreTrainedModel
from ..bert.model import BertForMaskedLM, MaskedLMTransform
from .config import REFERENCE_MODEL_TYPE, DebertaV2Config
from .weights import DEBERTA_V2_WEIGHT_MAP


def log_bucket_positions(relative: torch.Tensor, bucket_size: int, max_position: int) -> torch.Tensor:
    """DeBERTa's buckets: distances below ``bucket_size // 2`` exact, longer ones on a log scale up to
    ``max_position`` (the same operations as transformers' ``make_log_bucket_position``)."""
    sign = torch.sign(relative)
    mid = bucket_size // 2
    abs_pos = torch.where(
        (relative < mid) & (relative > -mid), torch.tensor(mid - 1).type_as(relative), torch.abs(relative)
    )
    log_pos = (
        torch.ceil(torch.log(abs_pos / mid) / torch.log(torch.tensor((max_position - 1) / mid)) * (mid - 1))
        + mid
    )
    return torch.where(abs_pos <= mid, relative.type_as(log_pos), log_pos * sign)


def relative_positions(length: int, config: DebertaV2Config, device: torch.device) -> torch.Tensor:
    """(length, length) long tensor of ``query position - key position``, bucketed as the config says."""
    positions = torch.arange(length, dtype=torch.long, device=device)
    relative = positions[:, None] - positions[None, :]
    max_position = config.max_relative_positions
    if max_position < 1:
        max_position = config.max_position_embeddings
    if config.position_buckets > 0 and max_position > 0:
        relative = log_bucket_positions(relative, config.position_buckets, max_position)
    return relative.to(torch.long)


class DisentangledAttention(Attention):
    """As :class:`zoo.layers.Attention` except: the scores add DeBERTa's disentangled relative-position
    terms, content-to-position (``c2p``: each query against the key projection of the relative embedding
    of its distance to each key) and position-to-content (``p2c``: each key against the query projection
    of the relative embedding of the opposite distance), and the scale is
    ``1 / sqrt(head_dim * (1 + len(pos_att_type)))`` (``config.attention_scaling``).

    The relative terms reach the kernel as an additive ``position_bias``: the eager kernel adds it to the
    scores, transformers' sdpa kernel folds it into the float mask of ``scaled_dot_product_attention``.
    With ``share_att_key`` the relative embeddings go through the content projection (``qkv``); otherwise
    through ``pos_key`` (c2p) and ``pos_query`` (p2c), as transformers' ``pos_key_proj`` / ``pos_query_proj``.
    """

    def __init__(self, config: DebertaV2Config, layer_idx: int):
        super().__init__(config, layer_idx, is_causal=False)
        self.pos_att_type = tuple(config.pos_att_type) if config.relative_attention else ()
        self.share_att_key = config.share_att_key
        self.span = config.relative_span
        if self.pos_att_type and not self.share_att_key:
            if "c2p" in self.pos_att_type:
                self.pos_key = nn.Linear(config.hidden_size, self.q_size)
            if "p2c" in self.pos_att_type:
                self.pos_query = nn.Linear(config.hidden_size, self.q_size)
        self.pos_dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        rel_embeddings: torch.Tensor | None = None,
        relative_pos: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, seq_len, _ = hidden_states.shape
        query, key, value = (
            part.view(batch, seq_len, -1, self.head_dim).transpose(1, 2)
            for part in self.qkv(hidden_states).split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        )
        bias = None
        if self.pos_att_type:
            bias = self.relative_bias(query, key, self.pos_dropout(rel_embeddings), relative_pos)
        return attend(self, query, key, value, attention_mask, position_bias=bias, **kwargs)

    def _per_head(self, states: torch.Tensor) -> torch.Tensor:
        """(positions, heads * head_dim) -> (heads, positions, head_dim)."""
        return states.view(states.shape[0], self.num_heads, self.head_dim).transpose(0, 1)

    def relative_bias(
        self, query: torch.Tensor, key: torch.Tensor, rel_embeddings: torch.Tensor, relative_pos: torch.Tensor
    ) -> torch.Tensor:
        """(batch, heads, query, key) c2p + p2c terms, scaled as the content scores are."""
        span = self.span
        rel_embeddings = rel_embeddings[: 2 * span]
        if self.share_att_key:
            pos_query, pos_key, _ = self.qkv(rel_embeddings).split(
                [self.q_size, self.kv_size, self.kv_size], dim=-1
            )
        else:
            pos_key = self.pos_key(rel_embeddings) if "c2p" in self.pos_att_type else None
            pos_query = self.pos_query(rel_embeddings) if "p2c" in self.pos_att_type else None
        shape = (*query.shape[:2], relative_pos.shape[0], relative_pos.shape[1])
        score = 0
        if "c2p" in self.pos_att_type:
            c2p = torch.matmul(query, self._per_head(pos_key).transpose(-1, -2))
            index = torch.clamp(relative_pos + span, 0, 2 * span - 1)
            score = score + torch.gather(c2p, dim=-1, index=index.expand(shape)) * self.scaling
        if "p2c" in self.pos_att_type:
            p2c = torch.matmul(key, self._per_head(pos_query).transpose(-1, -2))
            index = torch.clamp(-relative_pos + span, 0, 2 * span - 1)
            score = (
                score + torch.gather(p2c, dim=-1, index=index.expand(shape)).transpose(-1, -2) * self.scaling
            )
        return score


class ConvLayer(nn.Module):
    """DeBERTa-v2's convolution beside the first layer (xlarge / xxlarge): ``norm(layer output +
    act(conv(layer input)))`` with padding positions zeroed, as transformers' ``ConvLayer``."""

    def __init__(self, config: DebertaV2Config):
        super().__init__()
        size = config.conv_kernel_size
        hidden = config.hidden_size
        self.conv = nn.Conv1d(hidden, hidden, size, padding=(size - 1) // 2, groups=config.conv_groups)
        self.norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.act = ACT2FN[config.conv_act]

    def forward(self, inputs: torch.Tensor, layer_output: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: (batch, sequence) 1 for tokens, 0 for padding."""
        keep = tokens.unsqueeze(-1).to(layer_output.dtype)
        convolved = self.conv(inputs.transpose(1, 2)).transpose(1, 2) * keep
        return self.norm(layer_output + self.act(self.dropout(convolved))) * keep


class DisentangledEncoderBlock(PostNormEncoderBlock):
    """As :class:`zoo.blocks.PostNormEncoderBlock` except: the attention is :class:`DisentangledAttention`,
    handed the relative embeddings and positions (positional arguments, so that reentrant gradient
    checkpointing carries the gradient of the shared relative embeddings), and the first block of a model
    with a :class:`ConvLayer` is handed it (``conv``, ``tokens``) to add to its output, so that its output
    is the first hidden state, as in transformers."""

    def __init__(self, config: DebertaV2Config, layer_idx: int):
        super().__init__(config, layer_idx)
        self.attn = DisentangledAttention(config, layer_idx)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        rel_embeddings: torch.Tensor | None = None,
        relative_pos: torch.Tensor | None = None,
        conv: ConvLayer | None = None,
        tokens: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        attn_output, _ = self.attn(hidden_states, attention_mask, rel_embeddings, relative_pos, **kwargs)
        output = self.attn_norm(hidden_states + self.dropout(attn_output))
        output = self.mlp_norm(output + self.dropout(self.mlp(output)))
        return output if conv is None else conv(hidden_states, output, tokens)


class DebertaV2PreTrainedModel(ZooPreTrainedModel):
    config_class = DebertaV2Config
    config: DebertaV2Config
    _no_split_modules = ["DisentangledEncoderBlock"]
    _can_record_outputs = {
        "hidden_states": DisentangledEncoderBlock,
        "attentions": OutputRecorder(DisentangledAttention, index=1),
    }
    # the relative-position terms are an additive score bias: flash kernels take none, and flex attention
    # is not checked against the reference here
    _supports_flash_attn = False
    _supports_flex_attn = False
    weight_maps = {REFERENCE_MODEL_TYPE: DEBERTA_V2_WEIGHT_MAP}
    # transformers ignores absolute position embeddings a checkpoint carries when position_biased_input
    # is False (its _keys_to_ignore_on_load_unexpected); so do the zoo classes
    _optional_checkpoint_prefixes = ("embed_positions.", "model.embed_positions.")


class ContextPooler(nn.Module):
    """``act(dense(dropout(h[:, 0])))``: DeBERTa's sequence representation for its classifiers."""

    def __init__(self, config: DebertaV2Config):
        super().__init__()
        self.dropout = nn.Dropout(config.pooler_dropout)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACT2FN[config.pooler_hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(self.dropout(hidden_states[:, 0])))


class DebertaV2Model(DebertaV2PreTrainedModel):
    reference_architectures = {REFERENCE_MODEL_TYPE: "DebertaV2Model"}

    def __init__(self, config: DebertaV2Config, add_pooling_layer: bool = False):
        super().__init__(config)
        hidden = config.hidden_size
        self.embed_tokens = nn.Embedding(config.vocab_size, hidden, padding_idx=config.pad_token_id)
        self.embed_positions = (
            nn.Embedding(config.max_position_embeddings, hidden) if config.position_biased_input else None
        )
        self.embed_token_types = (
            nn.Embedding(config.type_vocab_size, hidden) if config.type_vocab_size > 0 else None
        )
        self.embed_norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layers = nn.ModuleList(
            DisentangledEncoderBlock(config, i) for i in range(config.num_hidden_layers)
        )
        self.rel_embeddings = (
            nn.Embedding(2 * config.relative_span, hidden) if config.relative_attention else None
        )
        self.rel_norm = (
            nn.LayerNorm(hidden, eps=config.layer_norm_eps) if config.norms_rel_embeddings else None
        )
        self.conv = ConvLayer(config) if config.conv_kernel_size > 0 else None
        self.pooler = ContextPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def embed(self, input_ids, inputs_embeds, token_type_ids, position_ids, attention_mask) -> torch.Tensor:
        """transformers' DeBERTa embeddings: sum, LayerNorm, padding positions zeroed, dropout."""
        embeddings = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        if self.embed_positions is not None:
            if position_ids is None:
                position_ids = positions_after_cache(embeddings.shape, 0, embeddings.device)
            embeddings = embeddings + self.embed_positions(position_ids)
        if self.embed_token_types is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros(embeddings.shape[:2], dtype=torch.long, device=embeddings.device)
            embeddings = embeddings + self.embed_token_types(token_type_ids)
        embeddings = self.embed_norm(embeddings)
        if attention_mask is not None:
            embeddings = embeddings * attention_mask.unsqueeze(-1).to(embeddings.dtype)
        return self.dropout(embeddings)

    def score_mask(self, attention_mask, position_ids, hidden_states) -> torch.Tensor | None:
        """Additive (batch, 1, query, key) mask: 0 where both the query and the key are tokens (transformers'
        DeBERTa masks padding queries too), the dtype's minimum elsewhere. A packed batch (``position_ids``
        restarting inside a row, no ``attention_mask``) gets a block-diagonal mask."""
        if attention_mask is None:
            if position_ids is None:
                return None
            position_ids = position_ids.expand(hidden_states.shape[0], -1)
            records = packed_sequence_ids(position_ids)
            if records is None:
                return None
            keep = records[:, None, :, None] == records[:, None, None, :]
        else:
            if attention_mask.dim() != 2:
                raise ValueError(
                    f"{type(self).__name__} takes a (batch, sequence) attention_mask, got shape "
                    f"{tuple(attention_mask.shape)}"
                )
            tokens = attention_mask.bool()
            keep = tokens[:, None, :, None] & tokens[:, None, None, :]
        dtype = hidden_states.dtype
        mask = torch.zeros(keep.shape, dtype=dtype, device=hidden_states.device)
        return mask.masked_fill(~keep, torch.finfo(dtype).min)

    def relative_inputs(self, length: int, device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The relative embeddings every layer shares (normed as ``norm_rel_ebd`` says) and the relative
        positions of a ``length``-token sequence."""
        if self.rel_embeddings is None:
            return None, None
        rel_embeddings = self.rel_embeddings.weight
        if self.rel_norm is not None:
            rel_embeddings = self.rel_norm(rel_embeddings)
        return rel_embeddings, relative_positions(length, self.config, device)

    @checked_forward
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """``attention_mask``: a (batch, sequence) padding mask. ``position_ids`` index the absolute position
        embeddings (``position_biased_input``); relative positions count from each row's first token.
        ``token_type_ids`` are read when ``type_vocab_size`` > 0 (ignored otherwise, as transformers does);
        ``use_cache`` is accepted and ignored (an encoder keeps no cache)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        kwargs.pop("output_attentions", None)
        kwargs.pop("output_hidden_states", None)
        hidden_states = self.embed(input_ids, inputs_embeds, token_type_ids, position_ids, attention_mask)
        mask = self.score_mask(attention_mask, position_ids, hidden_states)
        rel_embeddings, relative_pos = self.relative_inputs(hidden_states.shape[1], hidden_states.device)
        first = {}
        if self.conv is not None:
            tokens = attention_mask
            if tokens is None:
                tokens = torch.ones(hidden_states.shape[:2], device=hidden_states.device)
            first = {"conv": self.conv, "tokens": tokens}
        for i, block in enumerate(self.layers):
            hidden_states = block(
                hidden_states, mask, rel_embeddings, relative_pos, **(first if i == 0 else {}), **kwargs
            )
        pooled = self.pooler(hidden_states) if self.pooler is not None else None
        return BaseModelOutputWithPooling(last_hidden_state=hidden_states, pooler_output=pooled)


class DebertaV2ForMaskedLM(DebertaV2PreTrainedModel):
    """DeBERTa's masked-LM head: ``lm_head(norm(act(dense(h))))``, the vocabulary projection tied to the word
    embeddings, plus a bias. transformers 5.24 has it under two names (``config.legacy``, see ``weights.py``);
    neither is DeBERTa's enhanced mask decoder, which transformers does not implement (its ``z_steps`` is 0)."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    reference_architectures = {REFERENCE_MODEL_TYPE: "DebertaV2ForMaskedLM"}

    def __init__(self, config: DebertaV2Config):
        super().__init__(config)
        self.model = DebertaV2Model(config)
        self.head = MaskedLMTransform(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    # BERT's masked-LM forward: transform, vocabulary projection, the chunked loss when labels are given
    forward = BertForMaskedLM.forward
