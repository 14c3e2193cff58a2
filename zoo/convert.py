"""Checkpoint conversion between the zoo layout and the transformers reference layout."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import UnknownNameError
from .loading import CONFIG_NAME, read_config_dict, resolve_checkpoint
from .registry import zoo_class_for

TARGETS = ("transformers", "zoo")
# Files that describe weights or the model config; everything else (tokenizer, card, ...) is copied.
_MODEL_FILES = {
    CONFIG_NAME,
    "generation_config.json",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
}


def convert_checkpoint(
    src_dir: str | os.PathLike, dst_dir: str | os.PathLike, target: str = "transformers", max_shard_size="5GB"
) -> Path:
    """Convert a checkpoint directory (either layout) and write it in ``target`` layout.

    ``target="transformers"`` writes what plain transformers loads without this package (e.g.
    ``GPT2LMHeadModel.from_pretrained(dst_dir)``); ``target="zoo"`` writes the zoo layout.
    Tokenizer and other non-weight files are copied along.
    """
    if target not in TARGETS:
        raise UnknownNameError("conversion target", target, TARGETS)
    source = resolve_checkpoint(src_dir)
    model_class = zoo_class_for(read_config_dict(source), source=str(source / CONFIG_NAME))
    model = model_class.from_pretrained(source)
    destination = Path(dst_dir)
    if target == "transformers":
        model.save_reference(destination, max_shard_size=max_shard_size)
    else:
        model.save_pretrained(destination, max_shard_size=max_shard_size, layout="zoo")
    for file in source.iterdir():
        is_weights = file.suffix in (".safetensors", ".bin") or file.name in _MODEL_FILES
        if file.is_file() and not is_weights and not (destination / file.name).exists():
            shutil.copy2(file, destination / file.name)
    return destination
