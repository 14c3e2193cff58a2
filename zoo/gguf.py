"""Reading GGUF checkpoints (llama.cpp's format) through transformers' own GGUF reader.

transformers dequantises the tensors and names them as its reference architecture does; the
family's weight map then converts them like any reference checkpoint.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from .errors import CheckpointNotFoundError


def gguf_path(name_or_path: str | os.PathLike, gguf_file: str, **hub_kwargs) -> Path:
    """The GGUF file: ``gguf_file`` itself, inside the directory ``name_or_path``, or in that Hub repository."""
    for candidate in (Path(gguf_file), Path(name_or_path) / gguf_file):
        if candidate.is_file():
            return candidate
    if Path(name_or_path).is_dir():
        raise CheckpointNotFoundError(f"no GGUF file {gguf_file!r} in {name_or_path}")
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(str(name_or_path), gguf_file, **hub_kwargs))


@contextmanager
def open_gguf(file: Path):
    """Yields (reference config dict, {reference name: lazy tensor}) of a GGUF file."""
    try:
        import gguf  # noqa: F401  (transformers' reader needs it)
    except ImportError:
        raise ImportError(f"reading {file} needs the gguf package: pip install gguf") from None
    from .hf_internals import load_gguf_checkpoint

    config_fields = dict(load_gguf_checkpoint(str(file), return_tensors=False)["config"])
    reference_config = AutoConfig.for_model(**config_fields)
    with torch.device("meta"):  # only its parameter names are used, to name the GGUF tensors
        reference = AutoModelForCausalLM.from_config(reference_config)
    tensors = load_gguf_checkpoint(str(file), return_tensors=True, model_to_load=reference)["tensors"]
    yield reference_config.to_dict(), {name: (lambda t=t: t) for name, t in tensors.items()}
