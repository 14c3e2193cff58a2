"""Tokenizers a model owns: byte-level BPE trained offline, a local ``tokenizer.json``, or tiktoken.

Every function returns a ``transformers.PreTrainedTokenizerFast``, so the tokenizer saves next to the
model weights (``save_pretrained``) and loads with them. Byte-level BPE decodes every string it
encoded back exactly, whatever the corpus it was trained on.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from .errors import ZooError

END_OF_TEXT = "<|endoftext|>"  # GPT-2's document separator, the one special token nanoGPT uses
TOKENIZER_FILE = "tokenizer.json"


class MissingDependencyError(ZooError, ImportError):
    """An optional package is needed for what was asked; the message says how to install it."""


def train_bpe_tokenizer(
    texts: Iterable[str] | None = None,
    *,
    files: Sequence[str | os.PathLike] | None = None,
    vocab_size: int = 50257,
    min_frequency: int = 2,
    special_tokens: Sequence[str] = (END_OF_TEXT,),
) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE on ``texts`` (strings) or ``files`` (text files), offline.

    The first special token is the end-of-text (and beginning-of-text) token. On a small corpus the
    vocabulary may stay below ``vocab_size``: ``len(tokenizer)`` is the size a model needs.
    """
    if (texts is None) == (files is None):
        raise ValueError("pass exactly one of texts (an iterable of strings) or files (paths of text files)")
    if isinstance(texts, (str, os.PathLike)):
        raise TypeError("texts must be an iterable of strings; pass a file path as files=[path]")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    if files is not None:
        missing = [str(f) for f in files if not Path(f).is_file()]
        if missing:
            raise FileNotFoundError(f"corpus files do not exist: {', '.join(missing)}")
        tokenizer.train([str(f) for f in files], trainer)
    else:
        tokenizer.train_from_iterator(texts, trainer)
    return _wrap(tokenizer, special_tokens[0] if special_tokens else None)


def load_tokenizer(path: str | os.PathLike) -> PreTrainedTokenizerFast | PreTrainedTokenizerBase:
    """A tokenizer from a local ``tokenizer.json`` file, or from a directory a tokenizer was saved to."""
    path = Path(path)
    if path.is_dir():
        if not has_tokenizer(path):
            raise FileNotFoundError(f"{path} holds no tokenizer ({TOKENIZER_FILE} or tokenizer_config.json)")
        return AutoTokenizer.from_pretrained(path)
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer file or directory at {path}")
    tokenizer = Tokenizer.from_file(str(path))
    eos = END_OF_TEXT if tokenizer.token_to_id(END_OF_TEXT) is not None else None
    return _wrap(tokenizer, eos)


def has_tokenizer(directory: str | os.PathLike) -> bool:
    directory = Path(directory)
    return (directory / TOKENIZER_FILE).is_file() or (directory / "tokenizer_config.json").is_file()


def tiktoken_tokenizer(encoding: str = "gpt2") -> PreTrainedTokenizerFast:
    """OpenAI's tiktoken ``encoding`` as a fast tokenizer (tiktoken downloads the encoding when first used)."""
    try:
        import tiktoken
    except ImportError:
        raise MissingDependencyError(
            f"the tiktoken encoding {encoding!r} needs the optional package tiktoken: pip install tiktoken "
            "(or use zoo.train_bpe_tokenizer / zoo.load_tokenizer, which work offline)"
        ) from None
    from .hf_internals import convert_tiktoken_to_fast

    with tempfile.TemporaryDirectory() as directory:
        convert_tiktoken_to_fast(tiktoken.get_encoding(encoding), directory)
        tokenizer = Tokenizer.from_file(str(Path(directory) / TOKENIZER_FILE))
    eos = END_OF_TEXT if tokenizer.token_to_id(END_OF_TEXT) is not None else None
    return _wrap(tokenizer, eos)


def _wrap(tokenizer: Tokenizer, eos_token: str | None) -> PreTrainedTokenizerFast:
    # No clean-up of spaces before punctuation: decode(encode(text)) must give text back unchanged.
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=eos_token,
        eos_token=eos_token,
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],
    )
