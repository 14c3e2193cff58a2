"""Which zoo class loads a checkpoint, keyed by its ``config.json``.

Every zoo model class is registered here (and with the transformers Auto classes) when ``zoo`` is
imported. Outside code registers its own classes the same way, without editing the package.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, AutoModel

from .errors import UnknownNameError

_ZOO_CLASSES: dict[str, type] = {}  # class name -> class
_REFERENCE: dict[tuple[str, str], type] = {}  # (reference model_type, transformers architecture) -> zoo class
_BASE_BY_MODEL_TYPE: dict[str, type] = {}  # zoo or reference model_type -> its base (headless) class


def register_class(
    cls: type, auto_class: type | None = None, reference_aliases: tuple[str, ...] = ()
) -> type:
    """Make ``cls`` loadable by name, by its reference architectures, and through ``auto_class``.

    ``reference_aliases`` are further transformers architectures whose checkpoints ``cls`` loads
    (e.g. BERT pre-training checkpoints into the masked-LM class).
    """
    config_class = cls.config_class
    _ZOO_CLASSES[cls.__name__] = cls
    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    if auto_class is not None:
        auto_class.register(config_class, cls, exist_ok=True)
    for reference_type, architecture in cls.reference_architectures.items():
        for name in (architecture, *reference_aliases):
            _REFERENCE.setdefault((reference_type, name), cls)
    if auto_class is AutoModel:
        for model_type in (config_class.model_type, *cls.reference_architectures):
            _BASE_BY_MODEL_TYPE.setdefault(model_type, cls)
    return cls


def zoo_class_for(config: dict[str, Any], source: str = "config.json") -> type:
    """The zoo class for a config dict: by ``architectures`` when given, else the family's base class."""
    model_type = config.get("model_type")
    architectures = config.get("architectures") or []
    for architecture in architectures:
        if architecture in _ZOO_CLASSES and _ZOO_CLASSES[architecture].config_class.model_type == model_type:
            return _ZOO_CLASSES[architecture]
        if (model_type, architecture) in _REFERENCE:
            return _REFERENCE[(model_type, architecture)]
    if architectures and model_type in {t for t, _ in _REFERENCE}:
        valid = sorted(a for t, a in _REFERENCE if t == model_type)
        raise UnknownNameError(f"{model_type} architecture in {source}", architectures[0], valid)
    if model_type in _BASE_BY_MODEL_TYPE:
        return _BASE_BY_MODEL_TYPE[model_type]
    raise UnknownNameError(f"model_type in {source}", str(model_type), _BASE_BY_MODEL_TYPE)


def registered_classes() -> dict[str, type]:
    return dict(_ZOO_CLASSES)
