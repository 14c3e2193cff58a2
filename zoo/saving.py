"""Saves that never leave a half-written model behind.

Everything a save writes goes into a staging directory beside the destination first; only when every
file is complete are they moved into place (``os.replace``, one rename each, config files last). A
save that fails midway (a full disk, an exception, a kill before the moves) leaves the previous model
where it was and loadable, and removes the staging directory. Weight files of the previous save that
the new one does not write (other shards, an index, a ``pytorch_model.bin``) are removed after the
moves, so a loader never mixes two saves.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError

# Files a loader reads as weights: a previous save's copies that the new save lacks must go.
_WEIGHT_PATTERNS = ("model*.safetensors", "model.safetensors.index.json", "pytorch_model*.bin*")
# Moved last: a directory whose config is in place has its new weights in place too.
_LAST = ("config.json", "modules.json")


@contextmanager
def staged_directory(directory: str | os.PathLike, commit: bool = True) -> Iterator[Path]:
    """Yields an empty staging directory; on success its contents replace those of ``directory``.

    ``commit=False`` (a process that is not the main one in distributed training, which only takes part
    in gathering the weights) leaves ``directory`` untouched: its empty staging must never count as a
    save that removes the main process's files.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} is a file; a model is saved into a directory")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.saving-", dir=directory.parent))
    try:
        yield staging
        if not commit:
            return
        directory.mkdir(exist_ok=True)
        written = sorted(staging.iterdir(), key=lambda path: (path.name in _LAST, path.name))
        for path in written:
            target = directory / path.name
            if path.is_dir() and target.is_dir():
                shutil.rmtree(target)
            os.replace(path, target)
        names = {path.name for path in written}
        for pattern in _WEIGHT_PATTERNS:
            for stale in directory.glob(pattern):
                if stale.name not in names and stale.is_file():
                    stale.unlink()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
