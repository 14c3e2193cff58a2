"""``Criterion``: a model's training loss as a function of its logits, for loops that compute the loss
themselves (``model.criterion``, see :class:`zoo.modeling_base.ZooPreTrainedModel`).

It calls exactly the transformers loss (``LOSS_MAPPING``) the zoo's forwards compute, with the same
arguments, so a loss computed outside forward equals forward's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .configuration import ZooConfig
from .errors import ConfigError
from .hf_internals import LOSS_MAPPING

# How each supported transformers loss is called: (loss function, logits, labels, config, loss kwargs).
_CRITERION_CALLS: dict[str, Callable[..., torch.Tensor]] = {
    "ForCausalLM": lambda f, logits, labels, config, kw: f(
        logits=logits, labels=labels, vocab_size=config.vocab_size, **kw
    ),
    "ForMaskedLM": lambda f, logits, labels, config, kw: f(
        logits=logits, labels=labels, vocab_size=config.vocab_size, **kw
    ),
    "ForSequenceClassification": lambda f, logits, labels, config, kw: f(labels, logits, config, **kw),
    "ForTokenClassification": lambda f, logits, labels, config, kw: f(logits, labels, config, **kw),
}


@dataclass(frozen=True)
class Criterion:
    """A model's training loss as a function of its logits: ``"ForCausalLM"`` shifts the labels left
    (position ``i`` predicts token ``i + 1``), ``"ForMaskedLM"`` is token cross-entropy on aligned labels,
    the classification losses follow ``config.problem_type``. -100 labels are ignored; loss kwargs
    (``num_items_in_batch``) are passed on as forward passes them."""

    loss_type: str
    config: ZooConfig

    def __post_init__(self):
        if self.loss_type not in _CRITERION_CALLS:
            raise ConfigError(
                f"criterion loss type {self.loss_type!r} is not supported; valid: {', '.join(_CRITERION_CALLS)}"
            )

    @property
    def shifts_labels(self) -> bool:
        return self.loss_type == "ForCausalLM"

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, **loss_kwargs) -> torch.Tensor:
        function = LOSS_MAPPING[self.loss_type]
        # contiguous: the forwards reshape, transformers' losses view (a sliced batch would fail here only)
        call = _CRITERION_CALLS[self.loss_type]
        return call(function, logits.contiguous(), labels.contiguous(), self.config, loss_kwargs)
