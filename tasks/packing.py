"""Padding-free packing: several tokenized records concatenated in one row, each attending only to itself.

The contract, the same for encoders and decoders: a packed batch holds ``input_ids`` (rows, width),
``labels`` and ``position_ids`` that restart at each record's first token (at 0, or the family's
first position: RoBERTa / XLM-R count from ``pad_token_id + 1``), and **no** ``attention_mask``. A
decoder's causal mask (transformers' ``create_causal_mask``) and an encoder's bidirectional one
(``zoo.hf_internals.packed_bidirectional_mask``) read the records off the restarts and confine
attention to each record: block-diagonal, causal within a record for decoders, bidirectional for
encoders. A causal LM's packed batch also carries ``use_cache=False``: masks read the records off the
positions only without a cache, and an eval-mode decoder would otherwise start one. A row's unused tail is padding at its end: pad ids, label -100, every position at the
family's first one (each pad token is then a record of its own and attends to itself only).

Labels are the task collator's own (:class:`PackedCollator` pads the batch with it, then lays each
record's tokens into rows), so masking choices and random MLM masks are the padded batch's. For the
causal LM the first token of every record gets -100 (as transformers' ``DataCollatorWithFlattening``
does): it must not be predicted from the previous record's last token. The loss per token then equals
the padded batch's; tests/test_packing.py measures it.

Records are placed first-fit decreasing (longest first, each in the first row with room) into rows of
at most ``max_length`` tokens, each row keeping its records in their original order; a record never
spans two rows. Longest-first leaves less room unused than arrival order (WNUT-17 in batches of 32
records under the MiniLM tokenizer: 7.0% padding against 9.5%).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from zoo.errors import PackingError
from zoo.family import get_family
from zoo.hf_internals import BLOCK_MASK_ATTENTION

from .base import Task, get_task, resolve_family, task_names

IGNORE = -100
PACKABLE_KINDS = ("encoder", "decoder")
_FILL = {"labels": IGNORE}  # tail values of the per-token fields; input_ids: pad id, others 0

__all__ = [
    "PackedCollator",
    "PackingError",
    "check_packable",
    "pack_rows",
    "packable_tasks",
    "packing_collator",
]


def pack_rows(lengths: Sequence[int], max_length: int) -> list[list[int]]:
    """First-fit decreasing: the records' indices per row (rows in the order they were opened, each row's
    records in their original order), no row over ``max_length`` tokens, empty records left out."""
    if not isinstance(max_length, int) or max_length < 1:
        raise PackingError(f"max_length must be a positive integer, got {max_length!r}")
    for index, length in enumerate(lengths):
        if length > max_length:
            raise PackingError(
                f"record {index} has {length} tokens, more than the rows' max_length={max_length}; "
                f"valid: records of at most {max_length} tokens (preprocess with max_length <= {max_length})"
            )
    rows: list[list[int]] = []
    free: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):  # stable: ties keep their order
        length = lengths[index]
        if length <= 0:
            continue
        row = next((r for r, room in enumerate(free) if room >= length), None)
        if row is None:
            rows.append([])
            free.append(max_length)
            row = len(rows) - 1
        rows[row].append(index)
        free[row] -= length
    return [sorted(row) for row in rows]


def position_offset(family: Any) -> int:
    """The family's first position id: ``pad_token_id + 1`` where positions count from the padding index."""
    name, config = resolve_family(family)
    if config is None:
        config = get_family(name).config_class()
    if getattr(config, "positions_from_padding", False):
        return config.pad_token_id + 1
    return 0


class PackedCollator:
    """Wraps a padding collator: pads the batch with it, then packs the records' tokens into rows.

    ``collator``: the task's collator (its labels, its MLM masking); ``mask_record_starts``: label -100
    on each record's first token (causal LM); ``pad_to_max_length``: every row ``max_length`` wide
    (fixed shapes, e.g. for ``torch.compile``), else as wide as the fullest row; ``model_inputs``: added
    to every batch as they are (``{"use_cache": False}`` for causal LMs).
    """

    def __init__(
        self,
        collator: Callable[[list[dict]], dict],
        max_length: int,
        pad_token_id: int,
        position_offset: int = 0,
        mask_record_starts: bool = False,
        pad_to_max_length: bool = False,
        model_inputs: dict[str, Any] | None = None,
    ):
        if pad_token_id is None:
            raise PackingError("packing needs a pad token id for the rows' tails; set tokenizer.pad_token")
        self.collator = collator
        self.max_length = max_length
        self.pad_token_id = pad_token_id
        self.position_offset = position_offset
        self.mask_record_starts = mask_record_starts
        self.pad_to_max_length = pad_to_max_length
        self.model_inputs = dict(model_inputs or {})

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        lengths = [len(feature["input_ids"]) for feature in features]
        plan = pack_rows(lengths, self.max_length)
        padded = self.collator(features)
        input_ids = torch.as_tensor(padded["input_ids"])
        count, width = input_ids.shape
        if "attention_mask" in padded:  # left or right padding alike
            keep = torch.as_tensor(padded["attention_mask"]).bool()
        else:
            keep = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
        per_token = {
            key: torch.as_tensor(value)[keep]
            for key, value in padded.items()
            if key != "attention_mask" and torch.is_tensor(value) and value.shape[:2] == (count, width)
        }
        if any(key not in per_token for key in padded if key != "attention_mask"):
            others = sorted(key for key in padded if key not in per_token and key != "attention_mask")
            raise PackingError(
                f"the collator gives {', '.join(others)} that are not one value per token; only per-token "
                "fields (input_ids, labels, token_type_ids, ...) can be packed"
            )
        starts = [0]
        for length in lengths:
            starts.append(starts[-1] + length)
        used = [sum(lengths[i] for i in row) for row in plan]
        row_width = self.max_length if self.pad_to_max_length else max(used, default=1)
        source = torch.full((len(plan), row_width), -1, dtype=torch.long)
        positions = torch.full((len(plan), row_width), self.position_offset, dtype=torch.long)
        record_start = torch.zeros((len(plan), row_width), dtype=torch.bool)
        for r, members in enumerate(plan):
            column = 0
            for i in members:
                n = lengths[i]
                source[r, column : column + n] = torch.arange(starts[i], starts[i] + n)
                positions[r, column : column + n] = torch.arange(n) + self.position_offset
                record_start[r, column] = True
                column += n
        filled = source >= 0
        batch = {}
        for key, values in per_token.items():
            fill = self.pad_token_id if key == "input_ids" else _FILL.get(key, 0)
            row = torch.full((len(plan), row_width), fill, dtype=values.dtype)
            row[filled] = values[source[filled]]
            batch[key] = row
        if self.mask_record_starts and "labels" in batch:
            batch["labels"][record_start] = IGNORE
        batch["position_ids"] = positions
        batch.update(self.model_inputs)
        return batch


def packable_tasks() -> list[str]:
    """The registered task names whose collators pack exactly."""
    return [name for name in task_names() if not get_task(name).not_packable]


def check_packable(task: Task, family: Any) -> None:
    """Raise :class:`PackingError` unless packing ``task`` on ``family`` (a name, config or model) is exact."""
    if task.not_packable:
        raise PackingError(
            f"task {task.name!r} cannot be packed exactly: {task.not_packable}. Packing is exact for "
            f"{', '.join(packable_tasks())}; train {task.name!r} with padded batches (packing off)"
        )
    name, config = resolve_family(family)
    kind = get_family(name).kind
    if kind not in PACKABLE_KINDS:
        raise PackingError(
            f"family {name!r} is {kind!r}: its masks (encoder-decoder cross-attention, GLM's blank "
            f"infilling) are not confined to records by position ids; packing is exact for "
            f"{' and '.join(PACKABLE_KINDS)} families"
        )
    implementation = getattr(config, "_attn_implementation", None) if config is not None else None
    if implementation is not None and implementation not in BLOCK_MASK_ATTENTION:
        raise PackingError(
            f"attn_implementation={implementation!r} takes a padding mask only, so packed records would "
            f"attend to each other; valid for packing: {', '.join(BLOCK_MASK_ATTENTION)}"
        )


def packing_collator(
    task: Task | str,
    tokenizer,
    family: Any,
    max_length: int,
    pad_to_max_length: bool = False,
    **collator_options,
) -> PackedCollator:
    """``task``'s collator (a task or its name) packing records into rows of at most ``max_length`` tokens;
    :class:`~zoo.errors.PackingError` where packing is not exact (see ``Task.not_packable``)."""
    if isinstance(task, str):
        task = get_task(task)
    check_packable(task, family)
    collator = task.collator(tokenizer, family, **collator_options)
    causal = task.head == "causal-lm"
    return PackedCollator(
        collator,
        max_length,
        tokenizer.pad_token_id,
        position_offset=position_offset(family),
        mask_record_starts=causal,
        pad_to_max_length=pad_to_max_length,
        model_inputs={"use_cache": False} if causal else None,
    )
