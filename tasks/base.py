"""What every task shares: the ``Task`` interface, the task registry, typed errors, truncation reports.

A task = head kind + record schema + preprocessing + collator + metric + predictor. Tasks know the
model family only through a string (``"bert"``, ``"gpt2"``, ...) or a model / config the family is
read from (:func:`resolve_family`), so they work with every head composed for that family.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import datasets

from zoo.errors import UnknownNameError, ZooError
from zoo.family import family_for, get_family
from zoo.inputs import position_limit  # noqa: F401  (the tasks import it from here)

logger = logging.getLogger(__name__)


class TaskDataError(ZooError, ValueError):
    """Records do not fit the task: a missing field, an empty dataset, a malformed file."""


class LabelError(ZooError, ValueError):
    """Records carry labels outside the task's label set; the message names them and the valid ones."""

    def __init__(self, offending: Iterable[Any], valid: Sequence[Any], field: str = "label"):
        self.offending = sorted({str(label) for label in offending})
        self.valid = [str(label) for label in valid]
        super().__init__(
            f"{field} values not in the label set: {', '.join(map(repr, self.offending))}; "
            f"valid: {', '.join(map(repr, self.valid))}"
        )


def resolve_family(family_or_model: Any) -> tuple[str, Any]:
    """``(family, config or None)`` from a family name, a config or a model (``zoo.family`` registry)."""
    if isinstance(family_or_model, str):
        return get_family(family_or_model).name, None
    config = getattr(family_or_model, "config", family_or_model)
    return family_for(config).name, config


def ensure_pad_token(tokenizer) -> None:
    """Decoder-only tokenizers often have no padding token: pad with the end-of-text token (masked out)."""
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise TaskDataError("the tokenizer has neither a pad nor an eos token; set tokenizer.pad_token")
        tokenizer.pad_token = tokenizer.eos_token


def report_truncation(what: str, cut_tokens: Sequence[int], limit: int) -> None:
    """Warn once per call: how many records were cut, and how many tokens in all."""
    cut = [n for n in cut_tokens if n > 0]
    if cut:
        message = (
            f"{what}: truncated {len(cut)} of {len(cut_tokens)} record(s) to {limit} tokens, "
            f"cutting {sum(cut)} token(s) in all"
        )
        warnings.warn(message, stacklevel=3)
        logger.warning(message)


def model_inputs(encoding: Mapping[str, Any], family_or_model: Any) -> dict[str, Any]:
    """A tokenizer's output minus what the family's models do not take (a BERT-style tokenizer gives
    ``token_type_ids`` also when it serves T5, GLM or Llama models)."""
    family, _ = resolve_family(family_or_model)
    if get_family(family).token_types:
        return dict(encoding)
    return {key: value for key, value in encoding.items() if key != "token_type_ids"}


def as_dataset(records: Any) -> datasets.Dataset:
    """A ``datasets.Dataset`` from a Dataset, a list of dicts, or a dict of columns."""
    if isinstance(records, datasets.Dataset):
        return records
    if isinstance(records, Mapping):
        return datasets.Dataset.from_dict(dict(records))
    records = list(records)
    if not records:
        raise TaskDataError("no records to preprocess")
    return datasets.Dataset.from_list(records)


def require_fields(dataset: datasets.Dataset, task: str, fields: Iterable[str]) -> None:
    """Every record has a value for each of ``fields``: a None (JSON null, a key some records lack)
    would otherwise be trained on as an empty text or fail inside the tokenizer."""
    fields = list(fields)
    missing = [f for f in fields if f not in dataset.column_names]
    if missing:
        raise TaskDataError(
            f"task {task!r} needs the record field(s) {', '.join(missing)}; got {', '.join(dataset.column_names)}"
        )
    for field in fields:
        column = dataset.with_format("arrow")[field]
        if column.null_count:
            index = column.is_null().index(True).as_py()
            raise TaskDataError(
                f"task {task!r}: record {index} has no {field!r} (None); every record needs one"
            )


_CJK_GAP = re.compile(
    r"(?<=[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef])\s+(?=[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef])"
)


def decode_text(tokenizer, ids: Sequence[int]) -> str:
    """Token ids to text, without special tokens; WordPiece's spaces between CJK characters dropped."""
    return _CJK_GAP.sub("", tokenizer.decode(list(ids), skip_special_tokens=True)).strip()


class Task:
    """One task. Subclasses set the class attributes and implement the methods below."""

    name: ClassVar[str] = ""
    head: ClassVar[str] = ""
    description: ClassVar[str] = ""
    record_schema: ClassVar[dict[str, str]] = {}
    # Why packing several records into one row (tasks.packing) would change this task's loss; "" where
    # packing is exact.
    not_packable: ClassVar[str] = "it does not declare packing exact"

    def preprocess(
        self, records: Any, tokenizer, family: Any, max_length: int = 128, labels: Sequence | None = None
    ) -> datasets.Dataset:
        """Records (a Dataset, a list of dicts or a dict of columns) -> a tokenized ``datasets.Dataset``."""
        raise NotImplementedError

    def collator(self, tokenizer, family: Any) -> Callable[[list[dict]], dict]:
        """A batch collator padding to the batch's longest row."""
        raise NotImplementedError

    def compute_metrics(self, tokenizer, labels: Sequence | None = None) -> Callable:
        """A callable for ``Trainer(compute_metrics=...)``, taking an ``EvalPrediction``."""
        raise NotImplementedError

    def predictor(self, model, tokenizer, **kwargs):
        """An object with ``predict(inputs, batch_size=8, **kwargs)``."""
        raise NotImplementedError

    def label_config(self, labels: Sequence | None) -> dict[str, Any]:
        """Config keyword arguments a head needs for ``labels`` (empty for tasks without labels)."""
        if labels is None:
            return {}
        names = [str(label) for label in labels]
        return {
            "num_labels": len(names),
            "id2label": dict(enumerate(names)),
            "label2id": {name: i for i, name in enumerate(names)},
        }

    def __repr__(self) -> str:
        return f"<Task {self.name!r} head={self.head!r}>"


_REGISTRY: dict[str, Task] = {}


def register_task(name: str, task: Task, *, overwrite: bool = False) -> Task:
    """Register ``task`` under ``name`` (case-insensitive); an existing name needs ``overwrite=True``."""
    key = name.lower()
    if key in _REGISTRY and not overwrite and _REGISTRY[key] is not task:
        raise ValueError(f"task {name!r} is registered already; pass overwrite=True to replace it")
    _REGISTRY[key] = task
    return task


def get_task(name: str) -> Task:
    """The task registered under ``name``; an unknown name raises ``UnknownNameError`` with close matches."""
    key = name.lower() if isinstance(name, str) else name
    if key not in _REGISTRY:
        raise UnknownNameError("task", str(name), _REGISTRY)
    return _REGISTRY[key]


def task_names() -> list[str]:
    return sorted(_REGISTRY)
