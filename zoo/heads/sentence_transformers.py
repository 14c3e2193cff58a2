"""What a sentence-transformers directory says about its embedding head (read by ``auto_loader`` and the
head's ``from_pretrained``; the same tables write the head's own sentence-transformers directories).

sentence-transformers saves a model as a chain of modules (``modules.json``): the transformer, then a
``Pooling`` module (``1_Pooling/config.json``: which pooling) and often ``Normalize`` (L2). A zoo
embedding head loaded from such a directory must pool and normalise as that chain does, or its
vectors differ from the model's (all-MiniLM-L6-v2 unnormalised: norm 5.6 instead of 1). Modules the
head cannot reproduce (``Dense`` projections, max or sqrt-length pooling) are an error, never
silently skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError

MODULES_FILE = "modules.json"
# The module type names a directory gives (what ``modules.json`` says; written by sentence-transformers 2-5).
_TRANSFORMER, _POOLING, _NORMALIZE = (
    f"sentence_transformers.models.{name}" for name in ("Transformer", "Pooling", "Normalize")
)
# sentence-transformers 6 writes the classes' module paths instead; they mean the same three modules.
_MODULE_ALIASES = {
    "sentence_transformers.base.modules.transformer.Transformer": _TRANSFORMER,
    "sentence_transformers.sentence_transformer.modules.pooling.Pooling": _POOLING,
    "sentence_transformers.base.modules.normalize.Normalize": _NORMALIZE,
}
# sentence-transformers 6's ``pooling_mode`` values -> the zoo head's ``pooling``.
_POOLING_MODES = {"mean": "mean", "cls": "cls", "lasttoken": "last"}
# Pooling config flag -> the zoo head's ``pooling``.
_POOLING_FLAGS = {  # the zoo's POOLING_MODES
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_lasttoken": "last",
}
_UNSUPPORTED_FLAGS = (
    "pooling_mode_max_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
)


def sentence_transformers_head_defaults(directory: str | Path) -> dict[str, Any]:
    """``{"pooling": ..., "normalize_embeddings": ...}`` from ``directory``'s modules; {} without ``modules.json``."""
    directory = Path(directory)
    modules_file = directory / MODULES_FILE
    if not modules_file.is_file():
        return {}
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        kinds = [
            (_MODULE_ALIASES.get(module["type"], module["type"]), module.get("path", ""))
            for module in modules
        ]
    except (json.JSONDecodeError, TypeError, KeyError) as error:
        raise ConfigError(f"{modules_file}: not a sentence-transformers module list ({error})") from None
    known = (_TRANSFORMER, _POOLING, _NORMALIZE)
    unknown = [kind for kind, _ in kinds if kind not in known]
    if unknown:
        raise ConfigError(
            f"{modules_file}: modules {unknown} have no counterpart in the zoo embedding head, whose "
            f"vectors would then differ from the model's; supported: {', '.join(known)}"
        )
    defaults: dict[str, Any] = {"normalize_embeddings": any(kind == _NORMALIZE for kind, _ in kinds)}
    pooling_paths = [path for kind, path in kinds if kind == _POOLING]
    if pooling_paths:
        defaults["pooling"] = _pooling_mode(directory / pooling_paths[0] / "config.json")
    return defaults


def _pooling_mode(config_file: Path) -> str:
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{config_file}: cannot read the Pooling module's config ({error})") from None
    if config.get("include_prompt") is False:
        raise ConfigError(
            f"{config_file}: include_prompt=false (prompt tokens left out of the pool) is not supported"
        )
    if "pooling_mode" in config:  # sentence-transformers 6: one named mode
        mode = config["pooling_mode"]
        if mode not in _POOLING_MODES:
            raise ConfigError(
                f"{config_file}: pooling_mode {mode!r} cannot be reproduced; the zoo embedding head pools "
                f"as one of {', '.join(_POOLING_MODES)}"
            )
        return _POOLING_MODES[mode]
    unsupported = [flag for flag in _UNSUPPORTED_FLAGS if config.get(flag)]
    chosen = [mode for flag, mode in _POOLING_FLAGS.items() if config.get(flag)]
    if unsupported or len(chosen) != 1:
        set_flags = [flag for flag in (*_POOLING_FLAGS, *_UNSUPPORTED_FLAGS) if config.get(flag)]
        raise ConfigError(
            f"{config_file}: pooling {set_flags or 'none'} cannot be reproduced; the zoo embedding head "
            f"pools exactly one way: {', '.join(f'{flag} ({mode})' for flag, mode in _POOLING_FLAGS.items())}"
        )
    return chosen[0]
