"""Raw records from files, in the tasks' record schemas, read through ``datasets`` where it can.

* :func:`read_table` - json / jsonl / csv / tsv, with a column mapping onto the schema;
* :func:`read_conll` - ``token<TAB>TAG`` or ``token TAG`` per line, blank line between sentences
  (the character-per-line Chinese BIO files are the same format) -> ``{tokens, tags}``;
* :func:`read_line_pairs` - FlagAI's line-aligned ``.src`` / ``.tgt`` files -> ``{source, target}``;
* :func:`load_shared` - the real data sets under ``shared/data`` by name (see ``SHARED``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import datasets

from zoo.errors import UnknownNameError

from .base import TaskDataError

PathLike = str | os.PathLike


def _existing(path: PathLike) -> str:
    if not Path(path).is_file():
        raise FileNotFoundError(f"no data file at {path}")
    return str(path)


def read_table(
    path: PathLike,
    columns: Mapping[str, str] | None = None,
    column_names: list[str] | None = None,
    delimiter: str | None = None,
) -> datasets.Dataset:
    """A json/jsonl/csv/tsv file as a Dataset; ``columns`` renames file columns to schema fields
    (and drops the others); ``column_names`` names the columns of a file without a header row."""
    path = _existing(path)
    suffix = Path(path).suffix.lower()
    if suffix in (".json", ".jsonl"):
        dataset = datasets.load_dataset("json", data_files=path, split="train")
    else:
        sep = delimiter or ("," if suffix == ".csv" else "\t")
        options = {"sep": sep, "quoting": csv.QUOTE_NONE, "keep_default_na": False}
        if column_names is not None:
            options["column_names"] = column_names
        dataset = datasets.load_dataset("csv", data_files=path, split="train", **options)
    if columns:
        missing = [c for c in columns if c not in dataset.column_names]
        if missing:
            raise TaskDataError(
                f"{path} has no column(s) {', '.join(missing)}; it has {dataset.column_names}"
            )
        dataset = dataset.select_columns(list(columns)).rename_columns(
            {k: v for k, v in columns.items() if k != v}
        )
    return dataset


def parse_conll(lines, source: str = "CoNLL text") -> dict[str, list]:
    """``{"tokens": [...], "tags": [...]}`` columns from CoNLL lines (token first, tag last)."""
    sentences, tags, words, labels = [], [], [], []
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.startswith("-DOCSTART-"):
            if words:
                sentences.append(words)
                tags.append(labels)
            words, labels = [], []
            continue
        parts = line.split("\t") if "\t" in line else line.rsplit(" ", 1)
        if len(parts) < 2 or not parts[-1].strip():
            raise TaskDataError(f"{source} line {number}: expected 'token<TAB>TAG', got {line!r}")
        words.append(parts[0] if parts[0] else " ")
        labels.append(parts[-1].strip())
    if words:
        sentences.append(words)
        tags.append(labels)
    return {"tokens": sentences, "tags": tags}


def read_conll(path: PathLike) -> datasets.Dataset:
    with open(_existing(path), encoding="utf-8") as handle:
        return datasets.Dataset.from_dict(parse_conll(handle, source=str(path)))


def read_line_pairs(source_path: PathLike, target_path: PathLike) -> datasets.Dataset:
    """FlagAI's line-aligned source / target files (one example per line)."""
    sources = datasets.load_dataset("text", data_files=_existing(source_path), split="train")["text"]
    targets = datasets.load_dataset("text", data_files=_existing(target_path), split="train")["text"]
    if len(sources) != len(targets):
        raise TaskDataError(f"{source_path} has {len(sources)} lines but {target_path} has {len(targets)}")
    return datasets.Dataset.from_dict({"source": sources, "target": targets})


def shared_data_dir() -> Path:
    """``shared/data`` beside the repository (absent on a user's machine)."""
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _scitldr(path: Path) -> datasets.Dataset:
    dataset = read_table(path)
    return dataset.map(
        lambda r: {"source": " ".join(r["source"]), "target": r["target"][0] if r["target"] else ""},
        remove_columns=dataset.column_names,
    )


def _poetry(path: Path) -> datasets.Dataset:  # FlagAI's poetry prompt: "title：form"
    dataset = read_table(path)
    return dataset.map(
        lambda r: {"source": f"{r['title']}：{r['form']}", "target": r["text"]},
        remove_columns=dataset.column_names,
    )


_PAIR_COLUMNS = ["text", "text_pair", "label"]
SHARED: dict[str, tuple[str, Callable[[Path], datasets.Dataset]]] = {
    # name: (task, reader of shared/data/<file>)
    "flagai-title": (
        "title-generation",
        lambda d: read_line_pairs(
            d / "flagai-samples/title_generation_train.src", d / "flagai-samples/title_generation_train.tgt"
        ),
    ),
    "flagai-poetry": (
        "poetry-generation",
        lambda d: read_line_pairs(d / "flagai-samples/poetry_src.txt", d / "flagai-samples/poetry_tgt.txt"),
    ),
    "flagai-ner": ("ner", lambda d: read_conll(d / "flagai-samples/ner_example.train")),
    "flagai-matching": (
        "semantic-matching",
        lambda d: read_table(d / "flagai-samples/semantic_matching_train.tsv", column_names=_PAIR_COLUMNS),
    ),
    "csl-title": (
        "title-generation",
        lambda d: read_table(
            d / "csl-title-zh/dev.tsv",
            columns={"source": "source", "target": "target"},
            column_names=["prefix", "source", "target"],
        ),
    ),
    "scitldr": ("seq2seq", lambda d: _scitldr(d / "scitldr-en/train.jsonl")),
    "wnut17": ("ner", lambda d: read_conll(d / "wnut17-ner-en/wnut17train.conll")),
    "weibo-ner": ("ner", lambda d: read_conll(d / "weibo-ner-zh/weibo_ner.train.bio")),
    "pawsx": (
        "semantic-matching",
        lambda d: read_table(d / "pawsx-zh/PAWSX.valid.data", column_names=_PAIR_COLUMNS),
    ),
    "snli": (
        "semantic-matching",
        lambda d: read_table(
            d / "snli-en-sample/snli_dev_pairs.jsonl",
            columns={"sentence1": "text", "sentence2": "text_pair", "label": "label"},
        ),
    ),
    "tang-poetry": ("poetry-generation", lambda d: _poetry(d / "chinese-poetry/tangshi300_simplified.jsonl")),
    "tinyshakespeare": (
        "lm",
        lambda d: datasets.load_dataset(
            "text", data_files=str(d / "tinyshakespeare/input.txt"), split="train"
        ),
    ),
}


def load_shared(name: str, data_dir: PathLike | None = None) -> datasets.Dataset:
    """A real data set of ``shared/data`` in its task's record schema (``SHARED[name][0]`` is the task)."""
    if name not in SHARED:
        raise UnknownNameError("shared data set", name, SHARED)
    directory = Path(data_dir) if data_dir is not None else shared_data_dir()
    if not directory.is_dir():
        raise FileNotFoundError(f"no shared data directory at {directory}")
    return SHARED[name][1](directory)
