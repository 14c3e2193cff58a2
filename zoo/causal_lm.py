"""The causal-LM head every decoder-only family shares: base model + (tied) vocabulary projection."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from transformers.modeling_outputs import CausalLMOutputWithPast

from .decoding import lm_logits
from .fused_loss import linear_cross_entropy, loss_kwargs
from .hf_internals import Cache, can_return_tuple, checked_forward


class CausalLMMixin:
    """Bases of a family's LM: ``(CausalLMMixin, <Family>PreTrainedModel, ZooGenerationMixin)``.

    Set ``base_model_class`` to the family's base model. (transformers requires a ``GenerationMixin``
    as a direct base after the ``PreTrainedModel`` subclass, hence not inherited here.)
    """

    base_model_class: ClassVar[type]
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config):
        super().__init__(config)
        self.model = self.base_model_class(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

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
        """``labels`` are the input ids (shifted inside the loss); -100 marks ignored positions. With labels
        the loss is chunked (``zoo.fused_loss``) and ``logits`` come back detached, in the compute dtype."""
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        loss = None
        if labels is not None and self.fuses_loss(self.lm_head, logits_to_keep):
            loss, logits = linear_cross_entropy(
                outputs.last_hidden_state, self.lm_head, labels, shift=True, **loss_kwargs(kwargs)
            )
        else:
            logits = lm_logits(self.lm_head, outputs.last_hidden_state, logits_to_keep)
            if labels is not None:
                loss = self.loss_function(
                    logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs
                )
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
