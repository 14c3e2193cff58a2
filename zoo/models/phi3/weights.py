"""Phi-3: transformers / Hub names -> zoo names.

Phi-3 checkpoints store q / k / v fused, as ``self_attn.qkv_proj`` (query heads, then key, then value
heads: the zoo's ``attn.qkv`` row order), so it maps one to one. The feed-forward is fused too:
``mlp.gate_up_proj`` holds the gate rows, then the up rows, which the zoo keeps as ``mlp.gate`` and
``mlp.up`` (the shared gated MLP); :class:`SplitWeightMap` splits the tensor on import and
concatenates the two back on export.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ...errors import WeightsMismatchError
from ...weights import Lazy, WeightMap, template_of
from ..llama.weights import LLAMA_HEADS

PHI3_BASE = {
    "embed_tokens.weight": "embed_tokens.weight",
    "layers.{}.self_attn.qkv_proj.weight": "layers.{}.attn.qkv.weight",
    "layers.{}.self_attn.o_proj.weight": "layers.{}.attn.out.weight",
    "layers.{}.mlp.down_proj.weight": "layers.{}.mlp.down.weight",
    "layers.{}.input_layernorm.weight": "layers.{}.attn_norm.weight",
    "layers.{}.post_attention_layernorm.weight": "layers.{}.mlp_norm.weight",
    "norm.weight": "norm.weight",
    # Rotary frequencies older checkpoints saved; they are computed from the config.
    "layers.{}.self_attn.rotary_emb.inv_freq": None,
}

# One reference tensor -> zoo tensors, equal row blocks in this order.
PHI3_SPLITS = {
    "layers.{}.mlp.gate_up_proj.weight": ("layers.{}.mlp.gate.weight", "layers.{}.mlp.up.weight"),
}


def _fill(template: str, index: str | None) -> str:
    return template.replace("{}", index) if index is not None else template


class SplitWeightMap(WeightMap):
    """A WeightMap except: ``splits`` maps a reference name (under the base prefix) to several zoo names,
    the reference tensor's equal row blocks in order (the mirror of a fused tuple key). Import splits it,
    export concatenates the zoo tensors back; a reference name is reported for either zoo tensor.
    """

    def __init__(self, base: Mapping, heads: Mapping, reference_prefix: str, splits: Mapping):
        super().__init__(base, heads, reference_prefix)
        self._splits = {ref: tuple(f"{self.zoo_prefix}.{z}" for z in zoos) for ref, zoos in splits.items()}
        # zoo template -> (reference template, position, parts)
        self._joins = {
            zoo: (ref, position, len(zoos))
            for ref, zoos in self._splits.items()
            for position, zoo in enumerate(zoos)
        }

    def _split_of(self, reference_name: str) -> tuple[str, tuple[str, ...], str | None] | None:
        """(reference template, zoo templates, layer index) of a reference name that splits; else None."""
        template, index = template_of(reference_name)
        template = template.removeprefix(self.reference_prefix + ".")
        return (template, self._splits[template], index) if template in self._splits else None

    def _join_of(self, zoo_name: str) -> tuple[str, int, int, str | None] | None:
        """(reference template, position, parts, layer index) of a zoo name that is a split part; else None."""
        template, index = template_of(zoo_name)
        if template not in self._joins:
            template = f"{self.zoo_prefix}.{template}"
        return (*self._joins[template], index) if template in self._joins else None

    def to_zoo(
        self, reference: Mapping[str, Lazy], source: str = "checkpoint"
    ) -> tuple[dict[str, Lazy], list[str]]:
        split, rest = {}, {}
        for name, tensor in reference.items():
            (split if self._split_of(name) else rest)[name] = tensor
        converted, unknown = super().to_zoo(rest, source=source)
        for name, tensor in split.items():
            _, zoo_templates, index = self._split_of(name)
            for position, zoo_template in enumerate(zoo_templates):
                count = len(zoo_templates)
                # A copy, not a view: the parts must not share storage (safetensors refuses to save that).
                converted[_fill(zoo_template, index)] = lambda t=tensor, p=position, c=count: (
                    t().chunk(c, dim=0)[p].clone()
                )
        return converted, unknown

    def to_reference(self, zoo: Mapping[str, Lazy], config, with_prefix: bool) -> dict[str, Lazy]:
        parts: dict[str, list[Lazy | None]] = {}
        rest = {}
        for name, tensor in zoo.items():
            join = self._join_of(name)
            if join is None:
                rest[name] = tensor
                continue
            ref_template, position, count, index = join
            parts.setdefault(self._reference_name(ref_template, index, with_prefix), [None] * count)[
                position
            ] = tensor
        out = super().to_reference(rest, config, with_prefix)
        for ref_name, tensors in parts.items():
            if None in tensors:
                raise WeightsMismatchError(
                    missing=[ref_name],
                    source="zoo model",
                    hint=f"{ref_name} needs every zoo part it splits into",
                )
            out[ref_name] = lambda tensors=tensors: torch.cat([t() for t in tensors], dim=0)
        return out

    def _reference_name(self, ref_template: str, index: str | None, with_prefix: bool) -> str:
        prefix = f"{self.reference_prefix}." if with_prefix else ""
        return prefix + _fill(ref_template, index)

    def reference_names(self, zoo_name: str, with_prefix: bool) -> list[str]:
        join = self._join_of(zoo_name)
        if join is None:
            return super().reference_names(zoo_name, with_prefix)
        ref_template, _, _, index = join
        return [self._reference_name(ref_template, index, with_prefix)]

    def reference_error(
        self, error: WeightsMismatchError, reference: Mapping[str, Lazy], config
    ) -> WeightsMismatchError:
        """As WeightMap's, a split tensor named once and its shape compared as the checkpoint stores it."""
        with_prefix = any(name.startswith(self.reference_prefix + ".") for name in reference)
        seen, missing = set(), []
        for name in error.missing:  # gate and up name the same reference tensor
            key = tuple(self.reference_names(name, with_prefix))
            if key not in seen:
                seen.add(key)
                missing.append(name)
        split_lines, mismatched = {}, []
        for name, got, want in error.mismatched:
            join = self._join_of(name)
            if join is None:
                mismatched.append((name, got, want))
                continue
            ref_template, _, count, index = join
            ref_name = self._reference_name(ref_template, index, with_prefix)
            stored = tuple(reference[ref_name]().shape) if ref_name in reference else got
            stacked = (want[0] * count, *want[1:])
            split_lines.setdefault(
                ref_name, f"  shape of {ref_name}: checkpoint {stored}, model expects {stacked}"
            )
        trimmed = WeightsMismatchError(
            missing, error.unexpected, mismatched, source=error.source, hint=error.hint
        )
        hint = super().reference_error(trimmed, reference, config).hint
        lines = [hint] if hint else []
        if split_lines and not (missing or mismatched):
            lines.append("as the checkpoint names them:")
        lines += split_lines.values()
        return WeightsMismatchError(
            error.missing, error.unexpected, error.mismatched, source=error.source, hint="\n".join(lines)
        )


PHI3_WEIGHT_MAP = SplitWeightMap(PHI3_BASE, LLAMA_HEADS, reference_prefix="model", splits=PHI3_SPLITS)
