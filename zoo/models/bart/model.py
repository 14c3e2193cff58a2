"""BART: shared (optionally scaled) token embedding + learned positions -> LayerNorm -> post-LN encoder and
decoder stacks -> LM head tied to the embedding, plus ``final_logits_bias``.

The stacks are T5's (``zoo.blocks.PreNormSeq2SeqBlock``: the same sub-layers, the same
``EncoderDecoderCache``) except the residual order (post-LN here; pre-LN with a final norm for mBART),
learned absolute positions instead of a relative bias, and dropout after the MLP activation.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import nn
from transformers.modeling_outputs import (
    BaseModelOutput,
    BaseModelOutputWithPastAndCrossAttentions,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
)

from ...blocks import PreNormSeq2SeqBlock
from ...fused_loss import linear_cross_entropy
from ...hf_internals import (
    Cache,
    DynamicCache,
    EncoderDecoderCache,
    OutputRecorder,
    ZooGenerationMixin,
    bidirectional_mask,
    can_return_tuple,
    capture_outputs,
    causal_mask,
    checked_forward,
)
from ...layers import MLP, Attention, CrossAttention, build_norm
from ...modeling_base import ZooPreTrainedModel
from .config import POSITION_OFFSET, BartConfig
from .weights import BART_WEIGHT_MAP

# Keyword arguments callers (generate, Trainer, output flags) pass that the layers must not see.
_NOT_FOR_LAYERS = ("output_attentions", "output_hidden_states", "num_items_in_batch", "cache_position")


class BartMLP(MLP):
    """As :class:`~zoo.layers.MLP` except dropout after the activation (``activation_dropout``)."""

    def __init__(self, config):
        super().__init__(
            config.hidden_size, config.intermediate_size, config.hidden_act, bias=config.mlp_bias
        )
        self.act_dropout = nn.Dropout(config.activation_dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.down(self.act_dropout(self.act(self.up(hidden_states))))


class BartPreNormBlock(PreNormSeq2SeqBlock):
    """As :class:`~zoo.blocks.PreNormSeq2SeqBlock` except no position bias and a :class:`BartMLP` (mBART's
    block)."""

    def __init__(self, config, layer_idx: int, is_decoder: bool):
        super().__init__(config, layer_idx, is_decoder, has_position_bias=False)
        self.mlp = BartMLP(config)


class BartPostNormBlock(BartPreNormBlock):
    """As :class:`BartPreNormBlock` except post-LN (BART's block): each norm follows its residual addition,
    ``h = norm(x + sublayer(x))``."""

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_bias: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> torch.Tensor:
        self_cache = cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache
        attn_output, _ = self.attn(hidden_states, attention_mask, cache=self_cache, **kwargs)
        hidden_states = self.attn_norm(hidden_states + self.dropout(attn_output))
        if self.cross_attn is not None and encoder_hidden_states is not None:
            cross_output, _ = self.cross_attn(
                hidden_states, encoder_hidden_states, encoder_attention_mask, cache=cache, **kwargs
            )
            hidden_states = self.cross_attn_norm(hidden_states + self.dropout(cross_output))
        return self.mlp_norm(hidden_states + self.dropout(self.mlp(hidden_states)))


class ScaledEmbedding(nn.Embedding):
    """As ``nn.Embedding`` except the vectors are multiplied by ``scale`` (sqrt(d_model) where
    ``scale_embedding``, else 1)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None, scale: float):
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx)
        self.scale = scale

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return super().forward(input_ids) * self.scale


class BartPreTrainedModel(ZooPreTrainedModel):
    config_class = BartConfig
    config: BartConfig
    _no_split_modules = ["BartPreNormBlock", "BartPostNormBlock"]
    _can_record_outputs = {
        "hidden_states": BartPreNormBlock,
        "attentions": OutputRecorder(Attention, index=1),
        "cross_attentions": OutputRecorder(CrossAttention, index=1),
    }
    weight_maps = {"bart": BART_WEIGHT_MAP}

    def _shift_right(self, input_ids: torch.Tensor) -> torch.Tensor:
        """BART's decoder inputs from labels: ``decoder_start_token_id`` first, the labels shifted right,
        -100 replaced by the pad id (transformers' ``shift_tokens_right``)."""
        start, pad = self.config.decoder_start_token_id, self.config.pad_token_id
        if start is None or pad is None:
            raise ValueError(
                "config.decoder_start_token_id and config.pad_token_id must be set to shift labels"
            )
        shifted = input_ids.new_full(input_ids.shape, start)
        shifted[..., 1:] = input_ids[..., :-1]
        return shifted.masked_fill(shifted == -100, pad)


def shared_embedding(config: BartConfig) -> ScaledEmbedding:
    scale = math.sqrt(config.hidden_size) if config.scale_embedding else 1.0
    return ScaledEmbedding(config.vocab_size, config.hidden_size, config.pad_token_id, scale)


class BartStack(BartPreTrainedModel):
    """The encoder or the decoder (causal, caches, cross-attends); both take embedded tokens from the
    parent, which owns the shared embedding."""

    def __init__(self, config: BartConfig, is_decoder: bool):
        super().__init__(config)
        self.is_decoder = is_decoder
        num_layers = config.num_decoder_layers if is_decoder else config.num_hidden_layers
        self.embed_positions = nn.Embedding(
            config.max_position_embeddings + POSITION_OFFSET, config.hidden_size
        )
        self.embed_norm = build_norm(config)
        block = BartPreNormBlock if config.pre_norm else BartPostNormBlock
        self.layers = nn.ModuleList(block(config, i, is_decoder) for i in range(num_layers))
        self.norm = build_norm(config) if config.pre_norm else None
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.post_init()

    # generate hands the encoder every model kwarg, labels included (Seq2SeqTrainer's prediction step).
    @checked_forward(ignored=("labels",))
    @capture_outputs
    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPastAndCrossAttentions:
        for key in _NOT_FOR_LAYERS:
            kwargs.pop(key, None)
        past_length, cross_mask = 0, None
        if self.is_decoder:
            if use_cache is None:
                use_cache = self.config.use_cache and not self.training
            if use_cache and cache is None:
                cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
            self_cache = cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache
            past_length = self_cache.get_seq_length() if self_cache is not None else 0
            mask = causal_mask(
                config=self.config,
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                cache=self_cache,
            )
            if encoder_hidden_states is not None:
                cross_mask = bidirectional_mask(
                    config=self.config,
                    inputs_embeds=inputs_embeds,
                    attention_mask=encoder_attention_mask,
                    encoder_hidden_states=encoder_hidden_states,
                )
        else:
            use_cache, cache = False, None
            mask = bidirectional_mask(
                config=self.config, inputs_embeds=inputs_embeds, attention_mask=attention_mask
            )

        # arange(length) + past, not arange(past, past + length): a static cache's length is a traced value
        positions = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device) + past_length
        hidden_states = inputs_embeds + self.embed_positions(positions + POSITION_OFFSET)
        hidden_states = self.dropout(self.embed_norm(hidden_states))
        for block in self.layers:
            hidden_states = block(
                hidden_states, mask, None, encoder_hidden_states, cross_mask, cache=cache, **kwargs
            )
        if self.norm is not None:
            hidden_states = self.norm(hidden_states)
        return BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden_states, cache=cache if use_cache else None
        )


class BartEncoderModel(BartPreTrainedModel):
    """The shared embedding and the encoder stack alone: the backbone of the token-level heads.

    Its parameters are named as the full model's (``shared``, ``encoder.*``), so BART checkpoints load
    into it and their decoder and LM head are ignored.
    """

    def __init__(self, config: BartConfig):
        super().__init__(config)
        self.shared = shared_embedding(config)
        self.encoder = BartStack(config, is_decoder=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.shared = value

    @checked_forward
    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs) -> BaseModelOutput:
        return self.encoder(
            inputs_embeds=_embedded(self.shared, input_ids, inputs_embeds),
            attention_mask=attention_mask,
            **kwargs,
        )


def _embedded(shared: nn.Embedding, input_ids, inputs_embeds) -> torch.Tensor:
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("pass exactly one of input_ids or inputs_embeds")
    return shared(input_ids) if inputs_embeds is None else inputs_embeds


class BartModel(BartPreTrainedModel):
    reference_architectures = {"bart": "BartModel"}

    def __init__(self, config: BartConfig):
        super().__init__(config)
        self.shared = shared_embedding(config)
        self.encoder = BartStack(config, is_decoder=False)
        self.decoder = BartStack(config, is_decoder=True)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.shared = value

    def get_encoder(self):
        return _Encoder(self)

    def get_decoder(self) -> BartStack:
        return self.decoder

    @checked_forward
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> Seq2SeqModelOutput:
        """Without decoder inputs, the decoder reads ``input_ids`` shifted right (BART's denoising setup)."""
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            if input_ids is None:
                raise ValueError(
                    "pass decoder_input_ids or decoder_inputs_embeds, or input_ids to shift into them"
                )
            decoder_input_ids = self._shift_right(input_ids)
        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                inputs_embeds=_embedded(self.shared, input_ids, inputs_embeds),
                attention_mask=attention_mask,
                **kwargs,
            )
        elif not isinstance(encoder_outputs, BaseModelOutput):
            encoder_outputs = BaseModelOutput(
                last_hidden_state=encoder_outputs[0],
                hidden_states=encoder_outputs[1] if len(encoder_outputs) > 1 else None,
                attentions=encoder_outputs[2] if len(encoder_outputs) > 2 else None,
            )
        decoder_outputs = self.decoder(
            inputs_embeds=_embedded(self.shared, decoder_input_ids, decoder_inputs_embeds),
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=attention_mask,
            cache=cache,
            use_cache=use_cache,
            **kwargs,
        )
        return Seq2SeqModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            cache=decoder_outputs.cache,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )


class _Encoder(nn.Module):
    """What ``generate`` calls as ``get_encoder()``: the shared embedding then the encoder stack (the
    stack itself takes embedded tokens). Holds the model without registering it as a submodule."""

    def __init__(self, model: BartModel):
        super().__init__()
        self.__dict__["_model"] = model
        self.main_input_name = "input_ids"

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs) -> BaseModelOutput:
        model = self.__dict__["_model"]
        return model.encoder(
            inputs_embeds=_embedded(model.shared, input_ids, inputs_embeds),
            attention_mask=attention_mask,
            **kwargs,
        )


class BartForConditionalGeneration(BartPreTrainedModel, ZooGenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "model.shared.weight"}
    reference_architectures = {"bart": "BartForConditionalGeneration"}
    _optional_checkpoint_prefixes = ("classifier.",)  # a sequence classifier's head
    base_model_class = BartModel

    def __init__(self, config: BartConfig):
        super().__init__(config)
        self.model = self.base_model_class(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        # A buffer, as in transformers: loaded and saved, never trained.
        self.register_buffer("final_logits_bias", torch.zeros(1, config.vocab_size))
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def get_encoder(self):
        return self.model.get_encoder()

    def get_decoder(self) -> BartStack:
        return self.model.decoder

    def resize_token_embeddings(self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True):
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        rows, bias = embeddings.weight.shape[0], self.final_logits_bias
        extra = bias.new_zeros(1, max(0, rows - bias.shape[1]))
        self.final_logits_bias = torch.cat([bias[:, :rows], extra], dim=1)
        return embeddings

    def load_weights(self, weights, *, strict=True, source="weights", dtype=None):
        """As the base class's, plus the ``final_logits_bias`` buffer (zeros where the checkpoint lacks it,
        as transformers loads it)."""
        pairs, bias = [], None
        for name, tensor in weights:
            if name == "final_logits_bias":
                bias = tensor
            else:
                pairs.append((name, tensor))
        report = super().load_weights(pairs, strict=strict, source=source, dtype=dtype)
        value = bias() if callable(bias) else bias
        if value is None:
            value = torch.zeros(1, self.config.vocab_size)
        elif tuple(value.shape) != (1, self.config.vocab_size):
            from ...errors import WeightsMismatchError

            raise WeightsMismatchError(
                mismatched=[("final_logits_bias", tuple(value.shape), (1, self.config.vocab_size))],
                source=source,
            )
        self.final_logits_bias = value.to(device=self.lm_head.weight.device, dtype=self.lm_head.weight.dtype)
        return report

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return self._shift_right(labels)

    @checked_forward
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> Seq2SeqLMOutput:
        """``labels`` are the target ids (-100: ignored); without decoder inputs they are shifted right into
        them. The loss is the mean token cross-entropy, or its sum over ``num_items_in_batch``."""
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        if labels is not None:
            use_cache = False
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self._shift_right(labels)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            cache=cache,
            inputs_embeds=inputs_embeds,
            decoder_inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        bias = self.final_logits_bias.to(hidden_states.device).view(-1)
        loss = None
        if labels is not None and self.fuses_loss(self.lm_head):
            # the chunked loss reads only the head's weight and bias: the buffer is the bias
            head = SimpleNamespace(weight=self.lm_head.weight, bias=bias)
            loss, logits = linear_cross_entropy(
                hidden_states, head, labels, shift=False, num_items_in_batch=num_items_in_batch
            )
        else:
            logits = self.lm_head(hidden_states) + bias
            if labels is not None:
                loss = _cross_entropy(logits, labels.to(logits.device), num_items_in_batch)
        return Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            decoder_hidden_states=outputs.decoder_hidden_states,
            decoder_attentions=outputs.decoder_attentions,
            cross_attentions=outputs.cross_attentions,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states,
            encoder_attentions=outputs.encoder_attentions,
        )


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch) -> torch.Tensor:
    """Unshifted token cross-entropy (labels already align with the decoder positions)."""
    flat_logits, flat_labels = logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1)
    if num_items_in_batch is None:
        return nn.functional.cross_entropy(flat_logits, flat_labels, ignore_index=-100)
    total = nn.functional.cross_entropy(flat_logits, flat_labels, ignore_index=-100, reduction="sum")
    if isinstance(num_items_in_batch, torch.Tensor):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch
