"""Finding checkpoints (local directory first, then the Hub) and reading their files.

Weights are opened with ``safetensors.safe_open`` and handed on as lazy callables, so a tensor is
memory-mapped only when the model takes it and the model is never random-initialised first.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub import snapshot_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import SafetensorError, safe_open

from .errors import CheckpointNotFoundError, ConfigError, CorruptCheckpointError

try:  # the HTTP client huggingface_hub 2.x downloads with; a connection dropped mid-file raises its errors
    from httpx2 import TransportError
except ImportError:  # huggingface_hub 1.x
    from httpx import TransportError
from .weights import Lazy

CONFIG_NAME = "config.json"
SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
TORCH_WEIGHTS = "pytorch_model.bin"
TORCH_INDEX = "pytorch_model.bin.index.json"
# What a model directory needs from a Hub repository (weights in safetensors are preferred).
_HUB_ID = re.compile(r"^(?!\.)[\w.-]+(/[\w.-]+)?$")
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*", "merges.txt", "vocab*"]


def resolve_checkpoint(
    name_or_path: str | os.PathLike,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    local_dir: str | os.PathLike | None = None,
    allow_patterns: list[str] | None = None,
) -> Path:
    """A local directory holding ``config.json``: the path itself if it exists, else a Hub snapshot of
    the files ``allow_patterns`` names (default :data:`HUB_PATTERNS`)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / CONFIG_NAME).is_file():
            raise CheckpointNotFoundError(f"{path} is a directory but holds no {CONFIG_NAME}")
        return path
    if path.exists():
        raise CheckpointNotFoundError(
            f"{path} is a file; pass the directory that holds {CONFIG_NAME} and the weights"
        )
    name = str(name_or_path)
    if not _HUB_ID.match(name):
        raise CheckpointNotFoundError(
            f"no such directory: {path} (and it is not a Hub id of the form 'owner/name')"
        )
    try:
        snapshot = snapshot_download(
            name,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only,
            allow_patterns=allow_patterns or HUB_PATTERNS,
            local_dir=local_dir,
        )
    except (RepositoryNotFoundError, RevisionNotFoundError) as error:
        raise CheckpointNotFoundError(
            f"{name!r} is neither a local directory nor a Hub repository"
            + (f" at revision {revision!r}" if revision else "")
            + f": {type(error).__name__}"
        ) from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError, TransportError, OSError) as error:
        if local_files_only or hub_constants.HF_HUB_OFFLINE:  # offline already: the cache is all there is
            switch = "HF_HUB_OFFLINE is set" if hub_constants.HF_HUB_OFFLINE else "local_files_only=True"
            message = (
                f"{name!r} is not in the Hugging Face cache, and {switch}: nothing is downloaded. Fill the "
                f"cache once where the Hub is reachable (`HF_HUB_OFFLINE=0 hf download {name}`, or this call "
                "online), or pass a local directory."
            )
        else:
            message = (
                f"could not download {name!r}: the Hub at {hub_constants.ENDPOINT} is unreachable "
                f"({type(error.__cause__ or error).__name__}). Check the network (or HF_ENDPOINT), pass a local "
                "directory, or set HF_HUB_OFFLINE=1 to load a copy already in the Hugging Face cache."
            )
        raise CheckpointNotFoundError(message) from None
    return Path(snapshot)


def read_config_dict(directory: Path, filename: str = CONFIG_NAME) -> dict:
    """``config.json`` as a dict; malformed JSON is a :class:`ConfigError` naming the file and position."""
    file = Path(directory) / filename
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"{file} does not exist") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{file} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file} must hold a JSON object, found {type(data).__name__}")
    return data


def weight_files(directory: Path) -> list[Path]:
    """The weight files of a checkpoint directory: safetensors (single or sharded) or, failing that, torch."""
    for single, index in ((SAFE_WEIGHTS, SAFE_INDEX), (TORCH_WEIGHTS, TORCH_INDEX)):
        if (directory / single).is_file():
            return [directory / single]
        if (directory / index).is_file():
            try:
                shard_names = sorted(set(json.loads((directory / index).read_text())["weight_map"].values()))
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
                raise CorruptCheckpointError(
                    f"{directory / index} is not a valid shard index: {error}"
                ) from None
            shards = [directory / name for name in shard_names]
            absent = [str(s) for s in shards if not s.is_file()]
            if absent:
                raise CheckpointNotFoundError(
                    f"{directory / index} lists shards that do not exist: {', '.join(absent)}"
                )
            return shards
    present = sorted(p.name for p in directory.iterdir())
    raise CheckpointNotFoundError(
        f"{directory} holds no weights ({SAFE_WEIGHTS}, {SAFE_INDEX}, {TORCH_WEIGHTS} or {TORCH_INDEX}); "
        f"found: {', '.join(present) or 'nothing'}"
    )


@contextmanager
def open_weights(directory: Path) -> Iterator[dict[str, Lazy]]:
    """Yields ``{name: lazy tensor}`` over every weight file of ``directory``, memory-mapped."""
    with ExitStack() as stack:
        tensors: dict[str, Lazy] = {}
        for file in weight_files(directory):
            if file.suffix == ".safetensors":
                try:
                    handle = stack.enter_context(safe_open(str(file), framework="pt"))
                    names = list(handle.keys())
                except (SafetensorError, OSError, ValueError) as error:
                    raise CorruptCheckpointError(
                        f"{file} is not a readable safetensors file: {error}"
                    ) from None
                for name in names:
                    tensors[name] = _safetensors_getter(handle, name, file)
            else:
                state = _torch_load(file)
                tensors.update({name: (lambda t=t: t) for name, t in state.items()})
        yield tensors


def _safetensors_getter(handle, name: str, file: Path) -> Lazy:
    def get() -> torch.Tensor:
        try:
            return handle.get_tensor(name)
        except (SafetensorError, OSError, ValueError) as error:
            raise CorruptCheckpointError(f"{file}: tensor {name!r} cannot be read: {error}") from None

    return get


def _torch_load(file: Path, tensors_only: bool = True) -> dict[str, Any]:
    """A torch weights file as ``{name: tensor}``, unpickling tensors and plain containers only
    (``tensors_only=False``: any such dict, e.g. a nanoGPT ``ckpt.pt`` with its ``model_args``).

    The zip format (torch >= 1.6) is memory-mapped; the legacy format written with
    ``_use_new_zipfile_serialization=False`` (older FlagAI and DeepSpeed checkpoints) cannot be and is
    read whole, by the same weights-only unpickler.
    """
    try:
        state = torch.load(file, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(file))
    except Exception as error:  # torch raises several unrelated types for bad pickles
        raise CorruptCheckpointError(
            f"{file} cannot be read as a weights-only torch checkpoint: {error}"
        ) from None
    if not tensors_only:
        if not isinstance(state, dict):
            raise CorruptCheckpointError(f"{file} holds a {type(state).__name__}, not a dict")
        return state
    # DeepSpeed / FlagAI training checkpoints hold the weights under "module" next to training state.
    if isinstance(state, dict) and isinstance(state.get("module"), dict):
        state = state["module"]
    if not isinstance(state, dict):
        raise CorruptCheckpointError(f"{file} holds a {type(state).__name__}, not a state dict of tensors")
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CorruptCheckpointError(
                f"{file}: {name!r} is a {type(value).__name__}, not a tensor; a weights file holds tensors only"
            )
    return state
