"""Raw records from files, in the tasks' record schemas, read through ``datasets`` where it can.

* :func:`read_table` - json / jsonl / csv / tsv, with a column mapping onto the schema;
* :func:`read_conll` - ``token<TAB>TAG`` or ``token TAG`` per line, blank line between sentences
  (the character-per-line Chinese BIO files are the same format; CoNLL-2003's extra columns between
  token and tag are skipped) -> ``{tokens, tags}``;
* :func:`read_line_pairs` - FlagAI's line-aligned ``.src`` / ``.tgt`` files -> ``{source, target}``;
* :func:`load_shared` - the real data sets under ``shared/data`` by name (see ``SHARED``).

Files are UTF-8 (a leading BOM is dropped). A file that is not, or that is malformed, raises
:class:`~tasks.base.TaskDataError` naming the file and line, before ``datasets`` reads it: its own
errors name neither, and a short TSV row would otherwise pass as empty values.
"""

from __future__ import annotations

import csv
import io
import json
import os
import reprlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import datasets

from zoo.errors import UnknownNameError

from .base import TaskDataError

PathLike = str | os.PathLike


def _existing(path: PathLike) -> str:
    if not Path(path).is_file():
        raise FileNotFoundError(f"no data file at {path}")
    return str(path)


def _read_text(path: str) -> str:
    """The file decoded as UTF-8, without a leading BOM."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        byte = error.start - data.rfind(b"\n", 0, error.start)
        raise TaskDataError(
            f"{path} line {line}, byte {byte}: {data[error.start : error.end]!r} is not UTF-8 "
            f"({error.reason}); data files are read as UTF-8, save it in that encoding"
        ) from error
    return text.removeprefix("\ufeff")


def _lines(path: str) -> io.StringIO:
    """The file's lines as ``open()`` splits them ("\\n", "\\r\\n" or "\\r")."""
    return io.StringIO(_read_text(path), newline=None)


def _check_json(path: str, json_lines: bool) -> None:
    """Records as ``datasets`` reads them, at least one: JSON lines (one object per non-blank line),
    or, in a .json file, a JSON array of objects or one object."""
    text = _read_text(path)
    if not text.strip():
        raise TaskDataError(f"{path} is empty: no records")
    if not json_lines:
        try:
            first, end = json.JSONDecoder().raw_decode(text, len(text) - len(text.lstrip()))
        except json.JSONDecodeError as error:
            raise TaskDataError(
                f"{path} line {error.lineno}, column {error.colno}: not valid JSON ({error.msg})"
            ) from error
        json_lines = bool(text[end:].strip())  # more after the first value: JSON lines after all
    if json_lines:
        records = {
            f"line {number}": _json_line(path, number, line)
            for number, line in enumerate(text.split("\n"), 1)
            if line.strip()
        }
    else:
        records = {
            f"record {index}": record
            for index, record in enumerate(first if isinstance(first, list) else [first])
        }
    for where, record in records.items():
        if not isinstance(record, dict):
            raise TaskDataError(
                f"{path} {where}: {reprlib.repr(record)} is not a JSON object; each record is one"
            )
    if not records:
        raise TaskDataError(f"{path} holds no records")


def _json_line(path: str, number: int, line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise TaskDataError(
            f"{path} line {number}, column {error.colno}: not valid JSON ({error.msg}); "
            "a JSON-lines file holds one object per line"
        ) from error


def _check_table(path: str, delimiter: str, column_names: list[str] | None) -> None:
    """Every row has as many fields as the header (or ``column_names``), and one row at least."""
    names, records = column_names, 0
    for number, line in enumerate(_lines(path), 1):
        row = line.rstrip("\n").split(delimiter)  # no quoting: every delimiter separates two fields
        if row == [""]:  # a blank line, skipped as pandas does
            continue
        if names is None:
            names = row
        elif len(row) != len(names):
            raise TaskDataError(
                f"{path} line {number}: {len(row)} field(s), expected {len(names)} ({', '.join(names)}); "
                f"fields are separated by {delimiter!r} without quoting, so no value can hold {delimiter!r}"
            )
        else:
            records += 1
    if not records:
        header = f"a header row ({', '.join(names)}) and " if column_names is None and names else ""
        raise TaskDataError(f"{path} holds {header}no records")


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
        _check_json(path, json_lines=suffix == ".jsonl")
        builder, options = "json", {}
    else:
        sep = delimiter or ("," if suffix == ".csv" else "\t")
        _check_table(path, sep, column_names)
        builder, options = "csv", {"sep": sep, "quoting": csv.QUOTE_NONE, "keep_default_na": False}
        if column_names is not None:
            options["column_names"] = column_names
    dataset = datasets.load_dataset(builder, data_files=path, split="train", **options)
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


def _conll_columns(line: str) -> list[str]:
    """A CoNLL line's columns: split at tabs if it has one, else at runs of spaces. An empty first
    column is a whitespace token (character-per-line files)."""
    if "\t" in line:
        columns = line.split("\t")
    else:
        columns = line.split()
        if line.startswith(" "):
            columns.insert(0, "")
    return [columns[0] or " ", *columns[1:]]


def parse_conll(lines: Iterable[str], source: str = "CoNLL text") -> dict[str, list]:
    """``{"tokens": [...], "tags": [...]}`` columns from CoNLL lines: the token is the first column,
    the tag the last (CoNLL-2003's part-of-speech and chunk columns between them are skipped).

    Every token line must have as many columns as the first: a line with more is a token holding the
    separator (``New York B-LOC``), which cannot be told from an extra column.
    """
    sentences, tags, words, labels = [], [], [], []
    width = first_line = None
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip()
        if number == 1:
            line = line.removeprefix("\ufeff")
        if not line or line.startswith("-DOCSTART-"):
            if words:
                sentences.append(words)
                tags.append(labels)
            words, labels = [], []
            continue
        columns = _conll_columns(line)
        if len(columns) < 2:
            raise TaskDataError(
                f"{source} line {number}: expected a token and a tag separated by a tab or a space, "
                f"got {line!r}"
            )
        if width is None:
            width, first_line = len(columns), number
        elif len(columns) != width:
            raise TaskDataError(
                f"{source} line {number}: {len(columns)} columns, but line {first_line} has {width} "
                f"({line!r}); separate the columns by tabs if a token holds a space"
            )
        words.append(columns[0])
        labels.append(columns[-1])
    if words:
        sentences.append(words)
        tags.append(labels)
    return {"tokens": sentences, "tags": tags}


def read_conll(path: PathLike) -> datasets.Dataset:
    path = _existing(path)
    return datasets.Dataset.from_dict(parse_conll(_lines(path), source=path))


def read_line_pairs(source_path: PathLike, target_path: PathLike) -> datasets.Dataset:
    """FlagAI's line-aligned source / target files (one example per line)."""
    sources = [line.rstrip("\n") for line in _lines(_existing(source_path))]
    targets = [line.rstrip("\n") for line in _lines(_existing(target_path))]
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
