"""T5: shared token embedding -> pre-LN encoder and decoder stacks (relative position bias, RMS norms)
-> LM head (tied and input-scaled in original T5, untied in v1.1 / FLAN)."""

from __future__ import annotations

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
    cache_key_length,
    can_return_tuple,
    capture_outputs,
    causal_mask,
    checked_forward,
)
from ...layers import Attention, CrossAttention, build_norm
from ...loading import open_weights
from ...modeling_base import ZooPreTrainedModel
from .config import T5Config
from .weights import T5_WEIGHT_MAP

# Keyword arguments callers (generate, Trainer, output flags) pass that the layers must not see.
_NOT_FOR_LAYERS = ("output_attentions", "output_hidden_states", "num_items_in_batch", "cache_position")


class T5PreTrainedModel(ZooPreTrainedModel):
    config_class = T5Config
    config: T5Config
    _no_split_modules = ["PreNormSeq2SeqBlock"]
    _supports_flash_attn = False  # the relative position bias is an additive score term flash kernels lack
    _can_record_outputs = {
        "hidden_states": PreNormSeq2SeqBlock,
        "attentions": OutputRecorder(Attention, index=1),
        "cross_attentions": OutputRecorder(CrossAttention, index=1),
    }
    weight_maps = {"t5": T5_WEIGHT_MAP}

    @classmethod
    def _config_from_dict(cls, data, source, overrides):
        config = super()._config_from_dict(data, source, overrides)
        # transformers 5 writes tie_word_embeddings=true for untied T5 too; like its loader, let an
        # lm_head.weight that differs from shared.weight untie the head.
        if (
            data.get("model_type") == "t5"
            and config.tie_word_embeddings
            and "tie_word_embeddings" not in overrides
        ):
            config.tie_word_embeddings = not _checkpoint_has_untied_head(source.parent)
        return config

    def _shift_right(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Decoder inputs from labels: start token first, labels shifted right, -100 replaced by pad."""
        start, pad = self.config.decoder_start_token_id, self.config.pad_token_id
        if start is None or pad is None:
            raise ValueError(
                "config.decoder_start_token_id and config.pad_token_id must be set to shift labels"
            )
        shifted = input_ids.new_full(input_ids.shape, start)
        shifted[..., 1:] = input_ids[..., :-1]
        return shifted.masked_fill(shifted == -100, pad)


def _checkpoint_has_untied_head(directory) -> bool:
    try:
        with open_weights(directory) as tensors:
            if "lm_head.weight" not in tensors or "shared.weight" not in tensors:
                return False
            return not torch.equal(tensors["lm_head.weight"](), tensors["shared.weight"]())
    except (OSError, ValueError):
        return False  # a config without weights (init_from_json): keep what the config says


class T5Stack(T5PreTrainedModel):
    """The encoder (owns the token embedding) or the decoder (embedded by the parent; caches, cross-attends)."""

    def __init__(self, config: T5Config, is_decoder: bool):
        super().__init__(config)
        self.is_decoder = is_decoder
        num_layers = config.num_decoder_layers if is_decoder else config.num_hidden_layers
        self.embed_tokens = None if is_decoder else nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(
            PreNormSeq2SeqBlock(config, i, is_decoder, has_position_bias=i == 0) for i in range(num_layers)
        )
        self.norm = build_norm(config)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.post_init()

    # generate hands the encoder every model kwarg, labels included (Seq2SeqTrainer's prediction step);
    # the LM's forward consumes them and generate has checked them against its signature.
    @checked_forward(ignored=("labels",))
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPastAndCrossAttentions:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        for key in _NOT_FOR_LAYERS:
            kwargs.pop(key, None)
        if inputs_embeds is None:
            if self.embed_tokens is None:
                raise ValueError(
                    "the decoder stack takes inputs_embeds (the embedding belongs to the encoder)"
                )
            inputs_embeds = self.embed_tokens(input_ids)

        past_length = 0
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
            cross_mask = None
            if encoder_hidden_states is not None:
                cross_mask = bidirectional_mask(
                    config=self.config,
                    inputs_embeds=inputs_embeds,
                    attention_mask=encoder_attention_mask,
                    encoder_hidden_states=encoder_hidden_states,
                )
        else:
            use_cache, cache, cross_mask = False, None, None
            mask = bidirectional_mask(
                config=self.config, inputs_embeds=inputs_embeds, attention_mask=attention_mask
            )

        query_length = inputs_embeds.shape[1]
        key_length = cache_key_length(self_cache, query_length) if self.is_decoder else query_length
        position_bias = self.layers[0].position_bias(query_length, key_length, past_length)
        # (batch, heads, query, key), a view: flex attention's score_mod indexes it by batch row
        position_bias = position_bias.expand(inputs_embeds.shape[0], -1, -1, -1)
        hidden_states = self.dropout(inputs_embeds)
        for block in self.layers:
            hidden_states = block(
                hidden_states,
                mask,
                position_bias,
                encoder_hidden_states,
                cross_mask,
                cache=cache,
                **kwargs,
            )
        return BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=self.dropout(self.norm(hidden_states)),
            cache=cache if use_cache else None,
        )


class T5Model(T5PreTrainedModel):
    reference_architectures = {"t5": "T5Model"}

    def __init__(self, config: T5Config):
        super().__init__(config)
        self.encoder = T5Stack(config, is_decoder=False)
        self.decoder = T5Stack(config, is_decoder=True)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.encoder.embed_tokens = value

    def get_encoder(self) -> T5Stack:
        return self.encoder

    def get_decoder(self) -> T5Stack:
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
        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs
            )
        elif not isinstance(encoder_outputs, BaseModelOutput):
            encoder_outputs = BaseModelOutput(
                last_hidden_state=encoder_outputs[0],
                hidden_states=encoder_outputs[1] if len(encoder_outputs) > 1 else None,
                attentions=encoder_outputs[2] if len(encoder_outputs) > 2 else None,
            )
        if decoder_inputs_embeds is None:
            if decoder_input_ids is None:
                raise ValueError(
                    "pass decoder_input_ids or decoder_inputs_embeds (or labels to the LM model)"
                )
            decoder_inputs_embeds = self.encoder.embed_tokens(decoder_input_ids)
        decoder_outputs = self.decoder(
            inputs_embeds=decoder_inputs_embeds,
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


class T5ForConditionalGeneration(T5PreTrainedModel, ZooGenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "model.encoder.embed_tokens.weight"}
    reference_architectures = {"t5": "T5ForConditionalGeneration"}

    def __init__(self, config: T5Config):
        super().__init__(config)
        self.model = T5Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def get_encoder(self) -> T5Stack:
        return self.model.encoder

    def get_decoder(self) -> T5Stack:
        return self.model.decoder

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
        """``labels`` are the target ids (-100: ignored); without decoder inputs they are shifted right into them.

        The loss is the mean token cross-entropy, or its sum over ``num_items_in_batch`` when the
        Trainer passes that (exact gradient accumulation).
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
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
        if self.config.scale_decoder_outputs:
            hidden_states = hidden_states * self.config.hidden_size**-0.5
        loss = None
        if labels is not None and self.fuses_loss(self.lm_head):
            loss, logits = linear_cross_entropy(
                hidden_states, self.lm_head, labels, shift=False, num_items_in_batch=num_items_in_batch
            )
        else:
            logits = self.lm_head(hidden_states)
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


def _cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch: int | torch.Tensor | None
) -> torch.Tensor:
    """Unshifted token cross-entropy (labels already align with the decoder positions)."""
    flat_logits, flat_labels = logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1)
    if num_items_in_batch is None:
        return nn.functional.cross_entropy(flat_logits, flat_labels, ignore_index=-100)
    total = nn.functional.cross_entropy(flat_logits, flat_labels, ignore_index=-100, reduction="sum")
    if isinstance(num_items_in_batch, torch.Tensor):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch
