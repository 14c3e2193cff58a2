"""Named model factories that outside code registers without editing the package (ReaLHF's registry).

A factory has the signature ``factory(name, device, **model_kwargs) -> ModelBundle``. Registered names
take precedence over the catalog in :func:`make_model` and :class:`~auto_loader.AutoLoader`; every
other name (catalog entry, local directory, Hub id) goes through the default factory, which loads
the model the checkpoint's config calls for, or a task head when ``task=`` is given.

Tasks register through :func:`tasks.register_task`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from tasks import register_task
from zoo.errors import UnknownNameError

__all__ = [
    "ModelBundle",
    "ModelFactory",
    "make_model",
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


def make_model(name: str, device: str | torch.device = "cpu", **model_kwargs: Any) -> ModelBundle:
    """Build the model called ``name``: a registered factory, else the default (``default_factory``)."""
    factory = registered_factory(name) or default_factory
    bundle = factory(name, torch.device(device), **model_kwargs)
    if not isinstance(bundle, ModelBundle):
        raise TypeError(f"the factory for {name!r} returned {type(bundle).__name__}, not a ModelBundle")
    return bundle


def default_factory(name: str, device: torch.device, task: str | None = None, **model_kwargs) -> ModelBundle:
    """A catalog name, local directory or Hub id: its task head when ``task`` is given, else the model
    class its ``config.json`` names (``zoo.load``)."""
    from .loader import AutoLoader, resolve_model_directory

    if task is not None:
        loader = AutoLoader(task, name, device=device, **model_kwargs)
        return ModelBundle(name, loader.get_model(), loader.get_tokenizer(), device)

    import zoo

    hub_kwargs = {k: model_kwargs.pop(k) for k in ("revision", "cache_dir", "token") if k in model_kwargs}
    model_dir = model_kwargs.pop("model_dir", None)
    try:
        directory = resolve_model_directory(name, model_dir=model_dir, **hub_kwargs)
    except UnknownNameError as error:
        valid = sorted({*error.valid, *_FACTORIES})
        raise UnknownNameError("model name", name, valid) from None
    module = zoo.load(directory, device=device, **model_kwargs)
    from .loader import load_tokenizer

    return ModelBundle(name, module, load_tokenizer(directory, name), device)
