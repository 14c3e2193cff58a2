"""Which zoo class loads a checkpoint, keyed by its ``config.json``: the module map and config builders.

Every zoo model class is registered here (and with the transformers Auto classes) when ``zoo`` is
imported. Outside code extends both tables at run time, without editing the package:

* ``register_class(cls, auto_class)`` adds a family's class, or replaces the class used for an
  architecture (the latest registration wins);
* ``register_config_builder(name, condition, build)`` maps a checkpoint whose ``config.json`` uses
  other names onto a zoo family: ``condition(config_dict) -> bool``, ``build(config_dict) -> zoo config``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

from .configuration import ZOO_ARCHITECTURE_PREFIX
from .errors import UnknownNameError
from .hf_internals import list_model_type

_ZOO_CLASSES: dict[str, type] = {}  # class name -> class
_REFERENCE: dict[tuple[str, str], type] = {}  # (reference model_type, transformers architecture) -> zoo class
_BASE_BY_MODEL_TYPE: dict[str, type] = {}  # zoo or reference model_type -> its base (headless) class


def register_class(
    cls: type, auto_class: type | None = None, reference_aliases: tuple[str, ...] | None = None
) -> type:
    """Make ``cls`` loadable by name, by its reference architectures, and through ``auto_class``.

    Registering another class for an architecture already mapped replaces the earlier one.

    ``reference_aliases`` (default: the class's own) are further transformers architectures whose
    checkpoints ``cls`` loads (e.g. BERT pre-training checkpoints into the masked-LM class).
    """
    if reference_aliases is None:
        reference_aliases = getattr(cls, "reference_aliases", ())
    config_class = cls.config_class
    _ZOO_CLASSES[cls.__name__] = cls
    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    if auto_class is not None:
        auto_class.register(config_class, cls, exist_ok=True)
        if auto_class is not AutoModelForSeq2SeqLM or getattr(config_class(), "is_encoder_decoder", False):
            list_model_type(auto_class, config_class.model_type, cls)
    # A class that only exports to another's layout (nanoGPT's GPT as GPT-2) never takes it over.
    takes_over = getattr(cls, "has_transformers_counterpart", True)
    for reference_type, architecture in cls.reference_architectures.items():
        for name in (architecture, *reference_aliases):
            if takes_over or (reference_type, name) not in _REFERENCE:
                _REFERENCE[(reference_type, name)] = cls
    if auto_class is AutoModel:
        for model_type in (config_class.model_type, *cls.reference_architectures):
            _BASE_BY_MODEL_TYPE[model_type] = cls
    return cls


def zoo_class_for(config: dict[str, Any], source: str = "config.json") -> type:
    """The zoo class for a config dict: by ``architectures`` when given, else the family's base class."""
    model_type = config.get("model_type")
    architectures = config.get("architectures") or []
    reference_types = {t for t, _ in _REFERENCE}
    for architecture in architectures:
        if model_type not in reference_types:  # a zoo layout names ``Zoo<Class>`` (earlier saves ``<Class>``)
            architecture = architecture.removeprefix(ZOO_ARCHITECTURE_PREFIX)
        if architecture in _ZOO_CLASSES and _ZOO_CLASSES[architecture].config_class.model_type == model_type:
            return _ZOO_CLASSES[architecture]
        if (model_type, architecture) in _REFERENCE:
            return _REFERENCE[(model_type, architecture)]
    # An architecture no registered class has: loading the base class would drop the head's weights.
    if architectures and model_type in reference_types:
        valid = sorted(a for t, a in _REFERENCE if t == model_type)
        raise UnknownNameError(f"{model_type} architecture in {source}", architectures[0], valid)
    if architectures and model_type in _BASE_BY_MODEL_TYPE:
        valid = sorted(
            ZOO_ARCHITECTURE_PREFIX + name
            for name, cls in _ZOO_CLASSES.items()
            if cls.config_class.model_type == model_type
        )
        raise UnknownNameError(f"{model_type} architecture in {source}", architectures[0], valid)
    if model_type in _BASE_BY_MODEL_TYPE:
        return _BASE_BY_MODEL_TYPE[model_type]
    builder = matching_builder(config)
    if builder is not None:
        return builder.model_class or _BASE_BY_MODEL_TYPE[builder.build(config).model_type]
    tried = ", ".join(b.name for b in _BUILDERS) or "none registered"
    raise UnknownNameError(
        f"model_type in {source} (config builders tried: {tried}); model_type",
        str(model_type),
        _BASE_BY_MODEL_TYPE,
    )


@dataclass(frozen=True)
class ConfigBuilder:
    """Maps a foreign ``config.json`` onto a zoo family."""

    name: str
    condition: Callable[[dict[str, Any]], bool]
    build: Callable[[dict[str, Any]], Any]  # -> an instance of a registered zoo config class
    # Key of the family's ``weight_maps`` naming the checkpoint's tensors; None: they carry zoo names.
    weight_layout: str | None = None
    # The zoo class to build; None: the family's base model.
    model_class: type | None = None


_BUILDERS: list[ConfigBuilder] = []


def register_config_builder(
    name: str,
    condition: Callable[[dict[str, Any]], bool],
    build: Callable[[dict[str, Any]], Any],
    weight_layout: str | None = None,
    model_class: type | None = None,
) -> ConfigBuilder:
    """Register a hook tried (in registration order) for configs no family recognises."""
    builder = ConfigBuilder(name, condition, build, weight_layout, model_class)
    _BUILDERS.append(builder)
    return builder


def matching_builder(config: dict[str, Any]) -> ConfigBuilder | None:
    return next((b for b in _BUILDERS if b.condition(config)), None)


def config_builders() -> list[ConfigBuilder]:
    return list(_BUILDERS)


def registered_classes() -> dict[str, type]:
    return dict(_ZOO_CLASSES)
