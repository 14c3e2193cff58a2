"""What every composed head shares: the family description it is built from, and running the backbone.

A head class is ``(<Kind>Head, <Family>PreTrainedModel)`` with class attribute ``family`` (a
:class:`Family`): the kind mixin knows the task, the family record knows how to build and call the
backbone (``self.model``). Nothing here is specific to one family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

# Keyword arguments the Trainer passes that backbones must not see.
_LOSS_KWARGS = ("num_items_in_batch",)


@dataclass(frozen=True)
class Family:
    """One zoo family as the heads see it: data, no behaviour of its own."""

    name: str  # "bert"
    class_prefix: str  # "Bert" -> BertForSequenceClassification
    config_class: type
    pretrained_class: type  # <Family>PreTrainedModel, the second base of every head
    build_backbone: Callable[[Any, bool], nn.Module]  # (config, with_pooler) -> base model
    is_encoder: bool  # bidirectional family (bert, roberta, t5, glm) vs decoder (gpt2, llama, gpt)
    # how the sequence classifier pools: "pooler" (BERT's tanh pooler on [CLS]), "last" (last
    # non-padding token, as transformers' decoder classifiers) or "mean" (masked mean)
    sequence_pooling: str
    sequence_layer: str  # "classifier" / "score"
    token_layer: str
    accepts_token_type_ids: bool = False
    # extra backbone inputs for a sequence of a given length (use_cache=False, GLM's sep)
    extra_inputs: Callable[[int], dict[str, Any]] = lambda length: {}
    # checkpoint prefixes a head may find and ignore (LM heads, a decoder the head does not use)
    ignored_prefixes: tuple[str, ...] = ()
    # head kind -> {reference model_type: transformers architecture} the head loads and exports
    references: dict[str, dict[str, str]] = field(default_factory=dict)


class HeadMixin:
    """Base of every head kind. ``family`` is set on each composed class by the factory."""

    family: ClassVar[Family]
    head_kind: ClassVar[str]

    def build_backbone(self, config, with_pooler: bool = False) -> None:
        self.model = self.family.build_backbone(config, with_pooler)

    def head_dropout(self, config) -> nn.Dropout:
        rate = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout
        return nn.Dropout(rate)

    def encode(
        self,
        input_ids: torch.LongTensor | None,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.LongTensor | None,
        position_ids: torch.LongTensor | None,
        inputs_embeds: torch.Tensor | None,
        kwargs: dict[str, Any],
    ) -> BaseModelOutput:
        """Run the backbone with the inputs its family takes; loss kwargs are left in ``kwargs``."""
        inputs = {k: v for k, v in kwargs.items() if k not in _LOSS_KWARGS}
        if token_type_ids is not None:
            if not self.family.accepts_token_type_ids:
                raise ValueError(
                    f"{type(self).__name__} takes no token_type_ids ({self.family.name} has none)"
                )
            inputs["token_type_ids"] = token_type_ids
        if position_ids is not None:
            inputs["position_ids"] = position_ids
        length = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        inputs.update(self.family.extra_inputs(length))
        return self.model(
            input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **inputs
        )


def mean_pool(hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    if attention_mask is None:
        return hidden_states.mean(dim=1)
    weights = attention_mask.to(hidden_states.dtype)[..., None]
    return (hidden_states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


def last_index(non_padding: torch.Tensor) -> torch.Tensor:
    """Index of the rightmost True of each row (left or right padding alike); 0 for an empty row."""
    positions = torch.arange(non_padding.shape[1], device=non_padding.device)
    return (positions * non_padding.long()).argmax(dim=-1)


def gather_rows(hidden_states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return hidden_states[torch.arange(hidden_states.shape[0], device=hidden_states.device), index]


def last_token_pool(
    hidden_states: torch.Tensor,
    input_ids: torch.LongTensor | None,
    attention_mask: torch.Tensor | None,
    pad_token_id: int | None,
) -> torch.Tensor:
    """The last non-padding token's state, as transformers' GPT-2 / Llama sequence classifiers pick it:
    by ``pad_token_id`` in ``input_ids``; else by ``attention_mask``; else the last position."""
    if input_ids is not None and pad_token_id is not None:
        non_padding = input_ids.to(hidden_states.device) != pad_token_id
    elif attention_mask is not None:
        non_padding = attention_mask.to(hidden_states.device).bool()
    else:
        return hidden_states[:, -1]
    return gather_rows(hidden_states, last_index(non_padding))
