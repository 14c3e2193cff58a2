"""Named model factories that outside code registers without editing the package (ReaLHF's registry).

A factory has the signature ``factory(name, device, **model_kwargs) -> ModelBundle``. Registered names
take precedence over the catalog in ``auto_loader.make_model`` and :class:`~auto_loader.AutoLoader`;
every other name (catalog entry, local directory, Hub id) goes through the loader's default factory,
which loads the model the checkpoint's config calls for, or a task head when ``task=`` is given.

Tasks register through :func:`tasks.register_task`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from tasks import register_task

__all__ = [
    "ModelBundle",
    "ModelFactory",
    "register_model",
    "register_task",
    "registered_models",
]


@dataclass
class ModelBundle:
    """A model with what it needs to run: its name, the module, its tokenizer and its device."""

    name: str
    module: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase | None
    device: torch.device


ModelFactory = Callable[..., ModelBundle]  # factory(name, device, **model_kwargs)

_FACTORIES: dict[str, ModelFactory] = {}


def register_model(name: str, factory: ModelFactory, *, overwrite: bool = False) -> ModelFactory:
    """Make ``name`` (case-insensitive) build through ``factory(name, device, **model_kwargs)``."""
    if not callable(factory):
        raise TypeError(f"factory for {name!r} must be callable, got {type(factory).__name__}")
    key = name.lower()
    if key in _FACTORIES and not overwrite:
        raise ValueError(f"model {name!r} is already registered; pass overwrite=True to replace it")
    _FACTORIES[key] = factory
    return factory


def registered_models() -> dict[str, ModelFactory]:
    return dict(_FACTORIES)


def registered_factory(name: str) -> ModelFactory | None:
    return _FACTORIES.get(name.lower())
