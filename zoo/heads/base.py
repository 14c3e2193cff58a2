"""What every task head shares: binding to its family's declaration, and running the backbone.

A head class is ``class <Prefix>For<Suffix>(<Kind>Head, <Family>PreTrainedModel): family = <FAMILY>``,
written in the family's ``heads.py``. Naming the family is all it does: the class takes the family's
config class, its transformers architectures, the prefixes of the layers it adds (initialised when a
checkpoint lacks them) and those of a checkpoint's other heads (ignored) from the declaration
(``zoo.family.Family``). Nothing here is specific to one family.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from ..family import Family, FamilyDeclarationError

# Keyword arguments the Trainer passes that backbones must not see.
_LOSS_KWARGS = ("num_items_in_batch",)


class HeadMixin:
    """Base of every head kind; a subclass that sets ``family`` is a head class of that family."""

    family: ClassVar[Family]
    head_kind: ClassVar[str]
    class_suffix: ClassVar[str]  # <Prefix>For<class_suffix>

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        family = cls.__dict__.get("family")
        if family is None:
            return
        expected = f"{family.class_prefix}For{cls.class_suffix}"
        if cls.__name__ != expected:
            raise FamilyDeclarationError(
                f"family {family.name!r}: its {cls.head_kind} head class must be called {expected}, "
                f"not {cls.__name__}"
            )
        cls.config_class = family.config_class
        cls.reference_architectures = family.head_architectures(cls.head_kind, cls.class_suffix)
        cls._new_head_prefixes = cls.new_layers(family)
        cls._optional_checkpoint_prefixes = (*family.ignored_prefixes, "model.pooler.")

    @classmethod
    def new_layers(cls, family: Family) -> tuple[str, ...]:
        """Prefixes of the parameters the head adds to the backbone."""
        return ()

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
            if not self.family.token_types:
                raise ValueError(
                    f"{type(self).__name__} takes no token_type_ids ({self.family.name} has none)"
                )
            inputs["token_type_ids"] = token_type_ids
        if position_ids is not None:
            inputs["position_ids"] = position_ids
        length = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        inputs.update(self.family.backbone_inputs(length))
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
