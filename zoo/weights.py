"""The engine behind every family's weight map (the tables themselves live in ``models/*/weights.py``).

A table maps reference checkpoint names (what transformers saves, i.e. the Hub layout) to zoo names:

* keys are reference names with ``{}`` for the layer index, or a tuple of them whose tensors are
  concatenated along dim 0 into one zoo tensor (e.g. BERT's query / key / value -> ``qkv``);
* values are zoo names, ``Transposed(name)`` for GPT-2's Conv1D weights, or ``None`` for names that
  are dropped on purpose (old buffers, pre-training heads no zoo class has).

A :class:`WeightMap` pairs a base table (names under the reference base model prefix, e.g.
``bert.``) with a head table (full names), and converts in both directions. Tensors travel as
zero-argument callables so nothing is read from disk until it is needed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from .errors import WeightsMismatchError, _preview

Lazy = Callable[[], torch.Tensor]
_LAYER = re.compile(r"\.(\d+)\.")
# Original TF-converted BERT checkpoints name LayerNorm parameters gamma / beta.
_LEGACY_SUFFIXES = {".gamma": ".weight", ".beta": ".bias"}


@dataclass(frozen=True)
class Transposed:
    """A zoo ``nn.Linear`` weight stored transposed in the reference checkpoint (GPT-2's Conv1D)."""

    name: str


def template_of(name: str) -> tuple[str, str | None]:
    """``"h.3.attn.c_attn.weight"`` -> ``("h.{}.attn.c_attn.weight", "3")``."""
    match = _LAYER.search(name)
    if match is None:
        return name, None
    return name[: match.start()] + ".{}." + name[match.end() :], match.group(1)


def _fill(template: str, index: str | None) -> str:
    return template.replace("{}", index) if index is not None else template


class WeightMap:
    """Converts between a reference layout and the zoo layout of one family.

    Zoo names are full head-model names: base parameters under ``model.``, head parameters
    (``lm_head.*``, ...) at the top level.
    """

    zoo_prefix = "model"

    def __init__(
        self,
        base: Mapping,
        heads: Mapping,
        reference_prefix: str,
        split_sizes: Callable[[object, str], list[int]] | None = None,
    ):
        self.reference_prefix = reference_prefix
        self.split_sizes = split_sizes
        self._forward: dict[str, tuple[str | None, int, int, bool]] = {}  # ref template -> zoo info
        self._reverse: dict[str, tuple[tuple[str, ...], bool, bool]] = {}  # zoo template -> ref info
        for table, is_base in ((base, True), (heads, False)):
            for ref, zoo in table.items():
                parts = ref if isinstance(ref, tuple) else (ref,)
                transposed = isinstance(zoo, Transposed)
                zoo_name = zoo.name if transposed else zoo
                if zoo_name is not None:
                    zoo_name = f"{self.zoo_prefix}.{zoo_name}" if is_base else zoo_name
                    self._reverse.setdefault(zoo_name, (parts, transposed, is_base))
                for position, part in enumerate(parts):
                    key = part if not is_base else f"base:{part}"
                    self._forward[key] = (zoo_name, position, len(parts), transposed)

    # -- reference -> zoo -------------------------------------------------------------------------
    def _lookup(self, name: str):
        for suffix, replacement in _LEGACY_SUFFIXES.items():
            if name.endswith(suffix):
                name = name[: -len(suffix)] + replacement
        template, index = template_of(name)
        if template in self._forward:
            return self._forward[template], index
        stripped = template
        prefix = self.reference_prefix + "."
        if stripped.startswith(prefix):
            stripped = stripped[len(prefix) :]
        hit = self._forward.get(f"base:{stripped}")
        return hit, index

    def zoo_target(self, reference_name: str) -> tuple[str, int, int, bool] | None:
        """Where a reference tensor lands: ``(zoo name, part, parts fused, transposed)``; None if unmapped
        or dropped. ``"model.layers.0.self_attn.k_proj.weight"`` -> ``("model.layers.0.attn.qkv.weight", 1, 3, False)``."""
        hit, index = self._lookup(reference_name)
        if hit is None or hit[0] is None:
            return None
        zoo_template, position, count, transposed = hit
        return _fill(zoo_template, index), position, count, transposed

    def part_sizes(self, config, zoo_name: str, total: int) -> list[int]:
        """Rows of each reference tensor inside the fused zoo tensor ``zoo_name`` (``total`` rows)."""
        template = self._zoo_template(zoo_name)
        count = len(self._reverse[template][0]) if template in self._reverse else 1
        sizes = self.split_sizes(config, template) if self.split_sizes and count > 1 else None
        return list(sizes) if sizes else [total // count] * count

    def is_transposed(self, zoo_name: str) -> bool:
        template = self._zoo_template(zoo_name)
        return template in self._reverse and self._reverse[template][1]

    def to_zoo(
        self, reference: Mapping[str, Lazy], source: str = "checkpoint"
    ) -> tuple[dict[str, Lazy], list[str]]:
        """Rename (and fuse / transpose) reference tensors; returns (zoo tensors, unknown reference names)."""
        converted: dict[str, Lazy] = {}
        fused: dict[str, list[Lazy | None]] = {}
        fused_names: dict[str, list[str | None]] = {}
        unknown = []
        for name, tensor in reference.items():
            hit, index = self._lookup(name)
            if hit is None:
                unknown.append(name)
                continue
            zoo_template, position, count, transposed = hit
            if zoo_template is None:
                continue  # dropped on purpose
            zoo_name = _fill(zoo_template, index)
            if count == 1:
                if zoo_name not in converted:  # duplicates (tied aliases) keep the first
                    # A transposed view, not a copy: the memory-mapped file stays the storage (as
                    # transformers' own Conv1D keeps it) and nn.Linear multiplies by its transpose.
                    converted[zoo_name] = (lambda t=tensor: t().t()) if transposed else tensor
                continue
            fused.setdefault(zoo_name, [None] * count)[position] = tensor
            fused_names.setdefault(zoo_name, [None] * count)[position] = name
        incomplete = {zoo: names for zoo, names in fused_names.items() if None in names}
        if incomplete:
            missing, needed_with = [], []
            for zoo_name, names in incomplete.items():
                parts, _, _ = self._reverse[_template_key(zoo_name)]
                index = template_of(zoo_name)[1]
                present = [n for n in names if n is not None]
                prefix = (
                    self.reference_prefix + "." if present[0].startswith(self.reference_prefix + ".") else ""
                )
                absent = [prefix + _fill(p, index) for p, n in zip(parts, names) if n is None]
                missing += absent
                needed_with.append(f"{', '.join(absent)} (fused with {', '.join(present)})")
            raise WeightsMismatchError(
                missing=missing,
                source=source,
                hint="parts of a fused tensor are missing: " + "; ".join(needed_with),
            )
        for zoo_name, parts in fused.items():
            converted[zoo_name] = lambda parts=parts: torch.cat([p() for p in parts], dim=0)
        return converted, unknown

    # -- zoo -> reference -------------------------------------------------------------------------
    def _zoo_template(self, zoo_name: str) -> str:
        """The ``_reverse`` key of a zoo name; a base model's names lack the head prefix."""
        template = template_of(zoo_name)[0]
        if template not in self._reverse and f"{self.zoo_prefix}.{template}" in self._reverse:
            return f"{self.zoo_prefix}.{template}"
        return template

    def reference_names(self, zoo_name: str, with_prefix: bool) -> list[str]:
        """The reference names a zoo tensor comes from (several for a fused one); itself if unmapped."""
        template, index = self._zoo_template(zoo_name), template_of(zoo_name)[1]
        if template not in self._reverse:
            return [zoo_name]
        parts, _, is_base = self._reverse[template]
        prefix = f"{self.reference_prefix}." if (is_base and with_prefix) else ""
        return [prefix + _fill(p, index) for p in parts]

    def reference_error(
        self, error: WeightsMismatchError, reference: Mapping[str, Lazy], config
    ) -> WeightsMismatchError:
        """``error`` (in zoo names) with the names and shapes the reference checkpoint has added to it."""
        with_prefix = any(name.startswith(self.reference_prefix + ".") for name in reference)
        missing = [ref for name in error.missing for ref in self.reference_names(name, with_prefix)]
        mismatched = []
        for name, got, want in error.mismatched:
            template = self._zoo_template(name)
            names = self.reference_names(name, with_prefix)
            if len(names) == 1 and got is not None:
                if template in self._reverse and self._reverse[template][1]:  # stored (in, out)
                    got, want = tuple(reversed(got)), tuple(reversed(want))
                mismatched.append((names[0], got, want))
                continue
            # fused: compare every part with its share of the zoo tensor
            sizes = self.split_sizes(config, template) if self.split_sizes else None
            wanted = torch.empty(want, device="meta")
            chunks = wanted.split(sizes, dim=0) if sizes else wanted.chunk(len(names), dim=0)
            for ref_name, chunk in zip(names, chunks):
                shape = tuple(reference[ref_name]().shape)
                if shape != tuple(chunk.shape):
                    mismatched.append((ref_name, shape, tuple(chunk.shape)))
        lines = [error.hint] if error.hint else []
        if missing or mismatched:
            lines.append("as the checkpoint names them:")
        if missing:
            lines.append(f"  missing ({len(missing)}): {_preview(missing)}")
        lines += [f"  shape of {n}: checkpoint {got}, model expects {want}" for n, got, want in mismatched]
        return WeightsMismatchError(
            error.missing, error.unexpected, error.mismatched, source=error.source, hint="\n".join(lines)
        )

    def to_reference(self, zoo: Mapping[str, Lazy], config, with_prefix: bool) -> dict[str, Lazy]:
        """Rename zoo tensors to the reference layout (``with_prefix`` for head models)."""
        out: dict[str, Lazy] = {}
        for name, tensor in zoo.items():
            template, index = template_of(name)
            if template not in self._reverse:
                raise WeightsMismatchError(
                    unexpected=[name], source="zoo model", hint="no reference name for it"
                )
            parts, transposed, is_base = self._reverse[template]
            prefix = f"{self.reference_prefix}." if (is_base and with_prefix) else ""
            names = [prefix + _fill(p, index) for p in parts]
            if transposed:
                out[names[0]] = lambda t=tensor: t().t().contiguous()
            elif len(parts) == 1:
                out[names[0]] = tensor
            else:
                sizes = self.split_sizes(config, template) if self.split_sizes else None
                for position, ref_name in enumerate(names):
                    out[ref_name] = _split_part(tensor, position, len(parts), sizes)
        return out


def _template_key(zoo_name: str) -> str:
    return template_of(zoo_name)[0]


def _split_part(tensor: Lazy, position: int, count: int, sizes: list[int] | None) -> Lazy:
    def part() -> torch.Tensor:
        full = tensor()
        chunks = full.split(sizes, dim=0) if sizes else full.chunk(count, dim=0)
        return chunks[position].contiguous()

    return part
