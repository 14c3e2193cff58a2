"""Typed errors of the zoo. Each message says what was wrong and what would have been valid."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from huggingface_hub.errors import StrictDataclassError


class ZooError(Exception):
    """Base class of every error raised by the zoo."""


class ConfigError(ZooError, ValueError):
    """A configuration file or value is malformed; the message names the file and the field."""


class ConfigValidationError(ConfigError, StrictDataclassError):
    """A value a config's constructor refused; still the ``StrictDataclassError`` that callers of
    ``@strict`` dataclasses catch."""


class ModelInputError(ZooError, ValueError):
    """Inputs a model's sizes cannot take: token ids outside the vocabulary, more positions than its
    learned table, an attention mask shaped unlike the input ids."""


class PackingError(ZooError, ValueError):
    """Packing several records into one row was asked for where it would not be exact (a pooled or CRF
    head, an encoder-decoder, an attention that takes no block mask); the message says why and what packs."""


class UnsupportedCacheError(ZooError, ValueError):
    """A KV cache kind the model cannot decode with exactly (e.g. a sliding-window cache for GLM, whose
    mask attends to the whole context)."""


class UnsupportedGenerationError(ZooError, ValueError):
    """A generation mode the model cannot decode with exactly (e.g. assisted generation for GLM, whose
    block positions transformers cannot extend over draft tokens); the message says what works."""


class CheckpointNotFoundError(ZooError, FileNotFoundError):
    """A checkpoint path or Hub id could not be found or reached."""


class CorruptCheckpointError(ZooError, OSError):
    """A weights file exists but cannot be read as safetensors."""


class WeightsMismatchError(ZooError, KeyError):
    """Checkpoint names or shapes do not match the model; lists every offending name."""

    def __init__(
        self,
        missing: Iterable[str] = (),
        unexpected: Iterable[str] = (),
        mismatched: Iterable[tuple[str, tuple, tuple]] = (),
        source: str = "checkpoint",
        hint: str = "",
    ):
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.mismatched = sorted(mismatched)
        self.source = source
        self.hint = hint
        lines = [f"weights from {source} do not match the model:"]
        if self.missing:
            lines.append(f"  missing ({len(self.missing)}): {_preview(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected ({len(self.unexpected)}): {_preview(self.unexpected)}")
        for name, got, want in self.mismatched[:20]:
            found = "parts that do not fit together" if got is None else tuple(got)  # fused from several
            lines.append(f"  shape of {name}: checkpoint {found}, model expects {tuple(want)}")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return self.args[0]


class UnknownNameError(ZooError, KeyError):
    """A name (family, architecture, target layout, ...) is not one of the known ones."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        self.name = name
        self.valid = sorted(valid)
        close = difflib.get_close_matches(name, self.valid, n=3, cutoff=0.5)
        message = f"unknown {kind} {name!r}; valid: {', '.join(self.valid)}"
        if close:
            message += f" (did you mean {' or '.join(repr(c) for c in close)}?)"
        super().__init__(message)

    def __str__(self) -> str:
        return self.args[0]


def _preview(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
