"""PEFT adapters under transformers' module names, both ways, exactly.

An adapter trained with PEFT on a transformers model names that model's modules
(``model.layers.0.self_attn.q_proj``); the zoo fuses some of them (q, k and v into ``attn.qkv``).
:func:`load_adapter` reads either naming (a directory or a Hub id) into a zoo model and :func:`save_adapter` writes the
transformers naming by default, so PEFT on plain transformers (and vLLM's LoRA loader, which reads
the same two files) loads what zoo trains. :func:`register_peft_defaults` (run on ``import zoo``)
gives PEFT default targets for every zoo model type, so ``LoraConfig(task_type=...)`` and
``IA3Config()`` need no ``target_modules``. This is the one module that touches PEFT's tables.

The algebra of LoRA on a fused projection. LoRA adds ``s * B @ A`` to a weight (``A``: r x in,
``B``: out x r, ``s = alpha / r``, or ``alpha / sqrt(r)`` with rsLoRA). The fused weight stacks the
parts' rows, ``W = [W_q; W_k; W_v]``, so

* separate -> fused: ``A = [A_q; A_v]`` (rows stacked, rank ``r_q + r_v``) and ``B`` block-diagonal:
  ``B_q`` in the q rows and the ``A_q`` columns, ``B_v`` in the v rows and the ``A_v`` columns, zero
  elsewhere (k, not targeted, gets exactly zero). Each block is multiplied by ``s_part / s_fused``,
  so ``s_fused * B @ A = [s_q B_q A_q; 0; s_v B_v A_v]``. When every part has one shared ``A`` and
  one scaling (an adapter zoo wrote), ``A`` is kept once and ``B = [B_q; B_k; B_v]``: no rank growth.
* fused -> separate: each part keeps ``A`` whole and takes its rows of ``B``; ``s * B[rows_p] @ A``
  is exactly part p's rows of ``s * B @ A``. When ``B`` is block-diagonal (each column non-zero in
  one part's rows only, as the fusion above makes it), each part keeps only its own columns and the
  rows of ``A`` they multiply, which gives back the adapter that was fused.

Both directions only add or remove zeros, so they are exact in any precision. LoRA dropout draws one
mask for the fused input instead of one per part: training differs in which inputs are dropped,
never in the function a trained adapter computes. IA3 scales output rows (``ia3_l``, out x 1); a
fused module's untargeted rows get scale 1. Other PEFT methods (LoHa, LoKr, VeRA, ...) work on zoo
module names; they convert where no fusion is involved and raise where a fused projection would
need a product that has no exact fused form.
"""

from __future__ import annotations

import copy
import math
import os
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import peft
import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub import snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
from peft import PeftConfig, PeftModel, PeftType
from peft.utils import constants as peft_constants
from safetensors.torch import load_file, save_file

from .errors import CheckpointNotFoundError, UnknownNameError, WeightsMismatchError, ZooError
from .loading import _HUB_ID, TransportError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_ADAPTER_PATTERNS = [ADAPTER_CONFIG, ADAPTER_WEIGHTS, "adapter_model.bin", "README.md"]
PEFT_PREFIX = "base_model.model."
# Adapter tensors a PEFT method adds to a module, as ``<module>.<kind>[.<param>]`` in its files.
_ADAPTER_KEY = re.compile(
    r"^(?P<module>.+?)\.(?P<kind>lora_A|lora_B|lora_embedding_A|lora_embedding_B|lora_magnitude_vector|"
    r"ia3_l|hada_w1_a|hada_w1_b|hada_w2_a|hada_w2_b|lokr_w1|lokr_w2|lokr_w1_a|lokr_w1_b|lokr_w2_a|lokr_w2_b|"
    r"vera_lambda_b|vera_lambda_d|oft_R|boft_R|boft_s)(?P<param>\.weight|\.bias)?$"
)

# zoo model_type -> (the projections PEFT's LoRA-style methods target by default, the MLP output
# projection IA3 scales at its input). The defaults are the fused q/k/v projections, the analogue of
# PEFT's q_proj / v_proj defaults for transformers' classes.
# PEFT tables whose targets are not linear projections (layer norms, biases): left to the user.
_NOT_PROJECTION_TABLES = ("LNTUNING", "BEFT", "IA3_FEEDFORWARD")


class AdapterConversionError(ZooError, ValueError):
    """An adapter cannot be expressed exactly in the other naming (the message says why)."""


def register_peft_defaults(model_type: str, projections: tuple[str, ...], down: str) -> None:
    """Give ``model_type`` default targets in PEFT's per-method tables (idempotent): ``projections``
    (LoRA and the like), plus ``down`` for IA3, whose feed-forward module it is.
    ``zoo.family.register_family`` calls it with what the family declares."""
    for name in dir(peft_constants):
        if not (name.startswith("TRANSFORMERS_MODELS_TO_") and name.endswith("_MODULES_MAPPING")):
            continue
        table = getattr(peft_constants, name)
        method = name.removeprefix("TRANSFORMERS_MODELS_TO_").removesuffix("_TARGET_MODULES_MAPPING")
        if not isinstance(table, dict) or method.removesuffix("_MODULES_MAPPING") in _NOT_PROJECTION_TABLES:
            continue
        table.setdefault(model_type, [*projections, down] if method == "IA3" else list(projections))
    peft_constants.TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING.setdefault(model_type, [down])
    # The tuners bound their table at import; the dicts are shared, so registering here reaches them.
    assert peft.tuners.lora.model.LoraModel.target_module_mapping is (
        peft_constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
    )


# -- key and config helpers ------------------------------------------------------------------------
def _split_key(key: str) -> tuple[str, str, str] | None:
    """``base_model.model.x.q_proj.lora_A.weight`` -> ``("x.q_proj", "lora_A", ".weight")``."""
    match = _ADAPTER_KEY.match(key.removeprefix(PEFT_PREFIX))
    return (match["module"], match["kind"], match["param"] or "") if match else None


def _pattern_value(patterns: dict | None, module: str, default):
    """PEFT's per-module ``rank_pattern`` / ``alpha_pattern`` lookup (key matches a suffix of the name)."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def _scaling(config, rank: int, alpha: float) -> float:
    return alpha / math.sqrt(rank) if getattr(config, "use_rslora", False) else alpha / rank


def _alpha_for(config, rank: int, scaling: float) -> float:
    return scaling * math.sqrt(rank) if getattr(config, "use_rslora", False) else scaling * rank


def _weight_map(model):
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    weight_map = getattr(base, "weight_maps", {}).get(getattr(base.config, "reference_model_type", None))
    if weight_map is None:
        raise AdapterConversionError(
            f"{type(base).__name__} has no transformers layout to convert adapter names from or to"
        )
    return base, weight_map


def _zoo_parameter_name(base, full_zoo_name: str) -> str:
    """A weight map's zoo name (head-model names, ``model.`` for the backbone) as a name in ``base``."""
    prefix = base.base_model_prefix + "."
    if base.base_model is base and full_zoo_name.startswith(prefix):
        return full_zoo_name[len(prefix) :]
    return full_zoo_name


def _zoo_module_name(base, full_zoo_weight_name: str) -> str:
    return _zoo_parameter_name(base, full_zoo_weight_name).removesuffix(".weight")


def _targets_for(base, modules: set[str]) -> list[str]:
    """``target_modules`` naming exactly ``modules``: shortest suffixes that match nothing else."""
    names = [name for name, _ in base.named_modules()]
    chosen = []
    for module in sorted(modules):
        parts = module.split(".")
        for start in range(len(parts) - 1, -1, -1):
            suffix = ".".join(parts[start:])
            matched = {n for n in names if n == suffix or n.endswith("." + suffix)}
            if matched <= modules:
                chosen.append(suffix)
                break
    return sorted(set(chosen))


# -- transformers names -> zoo names -----------------------------------------------------------------
def adapter_to_zoo(model, config: PeftConfig, state: dict[str, torch.Tensor]) -> tuple[PeftConfig, dict]:
    """An adapter (config and tensors) trained on transformers' class, renamed and fused for ``model``."""
    base, weight_map = _weight_map(model)
    own_modules = {name for name, _ in base.named_modules()}
    config = copy.deepcopy(config)
    groups: dict[str, dict[int, dict[str, torch.Tensor]]] = {}  # zoo module -> part -> kind -> tensor
    shapes: dict[str, tuple[int, int]] = {}
    out: dict[str, torch.Tensor] = {}
    part_names: dict[tuple[str, int], str] = {}  # (zoo module, part) -> its reference module name
    missing = []
    for key, tensor in state.items():
        split = _split_key(key)
        if split is None:  # modules_to_save and other full weights
            target = weight_map.zoo_target(key.removeprefix(PEFT_PREFIX))
            if target is None:
                missing.append(key.removeprefix(PEFT_PREFIX))
                continue
            name, _, count, transposed = target
            if count != 1:
                raise AdapterConversionError(
                    f"{key}: a saved module that is fused in the zoo is not supported"
                )
            out[PEFT_PREFIX + _zoo_parameter_name(base, name)] = (
                tensor.t().contiguous() if transposed else tensor
            )
            continue
        module, kind, param = split
        target = weight_map.zoo_target(module + ".weight")
        zoo_module = _zoo_module_name(base, target[0]) if target else None
        if target is None or zoo_module not in own_modules:
            missing.append(module)
            continue
        _, position, count, _ = target
        groups.setdefault(zoo_module, {}).setdefault(position, {})[kind + param] = tensor
        part_names[(zoo_module, position)] = module
        shapes[zoo_module] = (count, base.get_submodule(zoo_module).weight.shape[0])
    if missing:
        raise AdapterConversionError(
            f"adapter targets {sorted(set(missing))} have no module in {type(base).__name__}; "
            f"its adaptable modules are named like {', '.join(_module_examples(base))}"
        )
    old_ranks = dict(getattr(config, "rank_pattern", None) or {})
    old_alphas = dict(getattr(config, "alpha_pattern", None) or {})
    rank_pattern, alpha_pattern = {}, {}
    for zoo_module, parts in groups.items():
        count, rows = shapes[zoo_module]
        sizes = weight_map.part_sizes(base.config, zoo_module + ".weight", rows)
        if count == 1:
            for kind, tensor in parts[0].items():
                out[f"{PEFT_PREFIX}{zoo_module}.{kind}"] = tensor
            ref = part_names[(zoo_module, 0)]
            rank = _pattern_value(old_ranks, ref, getattr(config, "r", None))
            alpha = _pattern_value(old_alphas, ref, getattr(config, "lora_alpha", None))
            if rank != getattr(config, "r", None):
                rank_pattern[zoo_module] = rank
            if alpha != getattr(config, "lora_alpha", None):
                alpha_pattern[zoo_module] = alpha
            continue
        names = {position: part_names[(zoo_module, position)] for position in parts}
        fused, rank, alpha = _fuse(config, zoo_module, parts, sizes, names, old_alphas)
        out.update({f"{PEFT_PREFIX}{zoo_module}.{kind}": tensor for kind, tensor in fused.items()})
        if rank is not None and rank != config.r:
            rank_pattern[zoo_module] = rank
        if alpha is not None and alpha != config.lora_alpha:
            alpha_pattern[zoo_module] = alpha
    if hasattr(config, "rank_pattern"):  # LoRA-style configs; IA3 has no rank
        config.rank_pattern, config.alpha_pattern = rank_pattern, alpha_pattern
    config.target_modules = _targets_for(base, set(groups))
    if getattr(config, "feedforward_modules", None):
        config.feedforward_modules = _zoo_targets_named(base, weight_map, config.feedforward_modules)
    if getattr(config, "modules_to_save", None):
        config.modules_to_save = _zoo_targets_named(base, weight_map, config.modules_to_save)
    if hasattr(config, "fan_in_fan_out"):  # the zoo's projections are nn.Linear, GPT-2's too
        config.fan_in_fan_out = False
    config.base_model_name_or_path = base.config.name_or_path or config.base_model_name_or_path
    return config, out


def _module_examples(base) -> list[str]:
    return sorted(
        {
            name.split(".")[-2] + "." + name.split(".")[-1]
            for name, m in base.named_modules()
            if isinstance(m, torch.nn.Linear) and "." in name
        }
    )[:8]


def _fuse(config, zoo_module, parts, sizes, names, old_alphas):
    """Fuse the per-part adapter tensors of one fused zoo module (see the module docstring)."""
    peft_type = config.peft_type
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    rows = sum(sizes)
    if peft_type == PeftType.IA3:
        if getattr(config, "feedforward_modules", None) and zoo_module.endswith(
            tuple(config.feedforward_modules)
        ):
            raise AdapterConversionError(
                f"{zoo_module}: IA3 input scaling of a fused projection has no exact form"
            )
        scale = torch.ones(rows, 1, dtype=next(iter(parts.values()))["ia3_l"].dtype)
        for position, tensors in parts.items():
            scale[offsets[position] : offsets[position] + sizes[position]] = tensors["ia3_l"].reshape(-1, 1)
        return {"ia3_l": scale}, None, None
    if peft_type != PeftType.LORA:
        raise AdapterConversionError(
            f"{peft_type.value} on {', '.join(sorted(names.values()))}: the zoo fuses them into "
            f"{zoo_module}, and a {peft_type.value} update of part of a fused weight has no exact fused form "
            "(LoRA and IA3 have one); target the zoo module names instead"
        )
    kinds = {kind for tensors in parts.values() for kind in tensors}
    if "lora_magnitude_vector" in kinds:
        raise AdapterConversionError(
            f"DoRA on {zoo_module}: its per-row norms of a fused weight are not those of the parts; "
            "convert DoRA adapters only for modules the zoo does not fuse"
        )
    scalings, ranks = {}, {}
    for position, tensors in parts.items():
        rank = tensors["lora_A.weight"].shape[0]  # the rank is in the tensors; alpha by the part's own name
        alpha = _pattern_value(old_alphas, names[position], config.lora_alpha)
        ranks[position], scalings[position] = rank, _scaling(config, rank, alpha)
    positions = sorted(parts)
    a_first = parts[positions[0]]["lora_A.weight"]
    shared = len(set(scalings.values())) == 1 and all(
        torch.equal(parts[p]["lora_A.weight"], a_first) for p in positions
    )
    dtype = a_first.dtype
    b_dtype = next(iter(parts.values()))["lora_B.weight"].dtype
    if shared:  # one A for every part: B stacks the parts' rows (zero for untargeted parts)
        rank = a_first.shape[0]
        lora_b = torch.zeros(rows, rank, dtype=b_dtype)
        for p in positions:
            lora_b[offsets[p] : offsets[p] + sizes[p]] = parts[p]["lora_B.weight"]
        fused = {"lora_A.weight": a_first, "lora_B.weight": lora_b}
        scaling = scalings[positions[0]]
        column_scale = {p: 1.0 for p in positions}
    else:
        rank = sum(ranks.values())
        scaling = scalings[positions[0]]
        lora_a = torch.cat([parts[p]["lora_A.weight"] for p in positions], dim=0)
        lora_b = torch.zeros(rows, rank, dtype=b_dtype)
        column = 0
        column_scale = {}
        for p in positions:
            column_scale[p] = scalings[p] / scaling
            block = parts[p]["lora_B.weight"] * column_scale[p]
            lora_b[offsets[p] : offsets[p] + sizes[p], column : column + ranks[p]] = block
            column += ranks[p]
        fused = {"lora_A.weight": lora_a.to(dtype), "lora_B.weight": lora_b}
    if "lora_B.bias" in kinds:
        bias = torch.zeros(rows, dtype=b_dtype)
        for p in positions:
            if "lora_B.bias" in parts[p]:
                bias[offsets[p] : offsets[p] + sizes[p]] = parts[p]["lora_B.bias"] * column_scale[p]
        fused["lora_B.bias"] = bias
    return fused, rank, _alpha_for(config, rank, scaling)


def _zoo_targets_named(base, weight_map, names) -> list[str]:
    """Zoo ``target_modules``-style suffixes for the modules transformers' ``names`` (suffixes) denote."""
    with_prefix = base.base_model is not base
    modules = set()
    for name, _ in base.named_modules():
        for reference in weight_map.reference_names(_full_zoo_name(base, name) + ".weight", with_prefix):
            reference = reference.removesuffix(".weight")
            if any(reference == n or reference.endswith("." + n) for n in names):
                modules.add(name)
    return _targets_for(base, modules)


def _zoo_parts_of(base, weight_map, reference_module: str, with_prefix: bool) -> list[str]:
    """The zoo linear modules stored in the one transformers module ``reference_module`` (Phi-3's
    ``gate_up_proj`` holds ``mlp.gate`` and ``mlp.up``)."""
    parts = []
    for name, module in base.named_modules():
        if isinstance(module, torch.nn.Linear):
            name = name.removesuffix(".base_layer")  # a layer PEFT wrapped
            try:
                references = weight_map.reference_names(_full_zoo_name(base, name) + ".weight", with_prefix)
            except (KeyError, ValueError):
                continue
            if reference_module + ".weight" in references:
                parts.append(name)
    return parts


def _full_zoo_name(base, module: str) -> str:
    return module if base.base_model is not base else f"{base.base_model_prefix}.{module}"


# -- zoo names -> transformers names -----------------------------------------------------------------
def adapter_to_transformers(
    model, config: PeftConfig, state: dict[str, torch.Tensor]
) -> tuple[PeftConfig, dict]:
    """An adapter trained on a zoo model, renamed (and split) for transformers' class of the architecture."""
    base, weight_map = _weight_map(model)
    with_prefix = base.base_model is not base
    config = copy.deepcopy(config)
    out: dict[str, torch.Tensor] = {}
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        split = _split_key(key)
        if split is None:  # a saved full module (modules_to_save)
            name = key.removeprefix(PEFT_PREFIX)
            full = _full_zoo_name(base, name)
            names = weight_map.reference_names(full, with_prefix)
            if len(names) != 1:
                raise AdapterConversionError(
                    f"{name}: a saved module that transformers splits is not supported"
                )
            transposed = weight_map.is_transposed(full) and name.endswith(".weight")
            out[PEFT_PREFIX + names[0]] = tensor.t().contiguous() if transposed else tensor
            continue
        module, kind, param = split
        groups.setdefault(module, {})[kind + param] = tensor
    rank_pattern, alpha_pattern, modules = {}, {}, set()
    for module, tensors in groups.items():
        full = _full_zoo_name(base, module) + ".weight"
        names = [n.removesuffix(".weight") for n in weight_map.reference_names(full, with_prefix)]
        if len(names) == 1 and len(shared := _zoo_parts_of(base, weight_map, names[0], with_prefix)) > 1:
            raise AdapterConversionError(
                f"{', '.join(shared)} are one tensor in transformers ({names[0]}): an adapter on "
                f"{module} has no form there as an adapter of that tensor; leave them out of "
                "target_modules, or save with layout='zoo'"
            )
        rank = _pattern_value(config.rank_pattern, module, config.r) if hasattr(config, "r") else None
        alpha = _pattern_value(config.alpha_pattern, module, getattr(config, "lora_alpha", None))
        if len(names) == 1:
            out.update({f"{PEFT_PREFIX}{names[0]}.{kind}": tensor for kind, tensor in tensors.items()})
            modules.add(names[0])
            if rank is not None and rank != config.r:
                rank_pattern[names[0]] = rank
            if alpha is not None and alpha != getattr(config, "lora_alpha", None):
                alpha_pattern[names[0]] = alpha
            continue
        rows = base.get_submodule(module).weight.shape[0]
        sizes = weight_map.part_sizes(base.config, full, rows)
        for name, part in zip(names, _split(config, module, tensors, sizes, rank, alpha)):
            if part is None:
                continue
            part_tensors, part_rank, part_alpha = part
            out.update({f"{PEFT_PREFIX}{name}.{kind}": tensor for kind, tensor in part_tensors.items()})
            modules.add(name)
            if part_rank is not None and part_rank != config.r:
                rank_pattern[name] = part_rank
            if part_alpha is not None and part_alpha != getattr(config, "lora_alpha", None):
                alpha_pattern[name] = part_alpha
    if hasattr(config, "rank_pattern"):
        config.rank_pattern = _compact_pattern(rank_pattern, modules)
    if hasattr(config, "alpha_pattern"):
        config.alpha_pattern = _compact_pattern(alpha_pattern, modules)
    config.target_modules = _reference_targets(modules)
    if getattr(config, "feedforward_modules", None):
        ff = {
            n.removesuffix(".weight")
            for m in config.feedforward_modules
            for name, _ in base.named_modules()
            if name == m or name.endswith("." + m)
            for n in weight_map.reference_names(_full_zoo_name(base, name) + ".weight", with_prefix)
        }
        config.feedforward_modules = _reference_targets(ff)
    if getattr(config, "modules_to_save", None):
        saved = set()
        for m in config.modules_to_save:
            for name, _ in base.named_modules():
                if name == m or name.endswith("." + m):
                    saved.update(
                        n.removesuffix(".weight")
                        for n in weight_map.reference_names(
                            _full_zoo_name(base, name) + ".weight", with_prefix
                        )
                    )
        config.modules_to_save = _reference_targets(saved)
    if hasattr(config, "fan_in_fan_out"):  # GPT-2's Conv1D stores (in, out): PEFT needs to know
        config.fan_in_fan_out = any(
            weight_map.is_transposed(_full_zoo_name(base, m) + ".weight") for m in groups
        )
    return config, out


def _compact_pattern(pattern: dict[str, Any], modules: set[str]) -> dict[str, Any]:
    """Per-module pattern entries keyed by their layer-independent suffix where every layer agrees."""
    by_suffix: dict[str, dict[str, Any]] = {}
    for module in modules:
        match = re.search(r"\.\d+\.", module)
        by_suffix.setdefault(module[match.end() :] if match else module, {})[module] = pattern.get(module)
    compact = {}
    for suffix, values in by_suffix.items():
        distinct = set(values.values())
        if distinct == {None}:
            continue
        if len(distinct) == 1:
            compact[suffix] = distinct.pop()
        else:
            compact.update({module: value for module, value in values.items() if value is not None})
    return compact


def _reference_targets(modules: set[str]) -> list[str]:
    """Layer-independent suffixes (``self_attn.q_proj``) when every layer's module is named, else full names."""
    suffixes = set()
    for module in modules:
        match = re.search(r"\.\d+\.", module)
        suffixes.add(module[match.end() :] if match else module)
    return sorted(suffixes)


def _split(config, module, tensors, sizes, rank, alpha):
    """One fused zoo module's adapter as one adapter per reference part (see the module docstring)."""
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    peft_type = config.peft_type
    if peft_type == PeftType.IA3:
        if getattr(config, "feedforward_modules", None) and module.endswith(
            tuple(config.feedforward_modules)
        ):
            raise AdapterConversionError(
                f"{module}: IA3 input scaling of a fused projection has no separate form"
            )
        scale = tensors["ia3_l"].reshape(-1, 1)
        parts = []
        for offset, size in zip(offsets, sizes):
            rows = scale[offset : offset + size]
            parts.append(None if torch.all(rows == 1) else ({"ia3_l": rows.contiguous()}, None, None))
        return parts
    if peft_type != PeftType.LORA or "lora_magnitude_vector" in tensors or "lora_A.weight" not in tensors:
        kind = "DoRA" if "lora_magnitude_vector" in tensors else peft_type.value
        raise AdapterConversionError(
            f"{kind} on the fused projection {module}: its update of the fused weight has no exact form as "
            "separate q/k/v updates (LoRA and IA3 have one); save it with layout='zoo'"
        )
    lora_a, lora_b = tensors["lora_A.weight"], tensors["lora_B.weight"]
    bias = tensors.get("lora_B.bias")
    scaling = _scaling(config, rank, alpha)
    nonzero = torch.stack(
        [(lora_b[o : o + s] != 0).any(dim=0) for o, s in zip(offsets, sizes)]
    )  # part x column
    block_diagonal = bool((nonzero.sum(dim=0) == 1).all())
    parts = []
    for index, (offset, size) in enumerate(zip(offsets, sizes)):
        rows_b = lora_b[offset : offset + size]
        rows_bias = None if bias is None else bias[offset : offset + size]
        if block_diagonal:
            columns = nonzero[index].nonzero().flatten()
            if len(columns) == 0 and (rows_bias is None or not rows_bias.any()):
                parts.append(None)  # this part was not targeted
                continue
            part = {
                "lora_A.weight": lora_a[columns].contiguous(),
                "lora_B.weight": rows_b[:, columns].contiguous(),
            }
            part_rank = len(columns)
        else:
            part = {"lora_A.weight": lora_a.clone(), "lora_B.weight": rows_b.contiguous()}
            part_rank = rank
        if rows_bias is not None:
            part["lora_B.bias"] = rows_bias.contiguous()
        parts.append(
            (part, part_rank, _alpha_for(config, part_rank, scaling) if part_rank != rank else alpha)
        )
    return parts


# -- files -----------------------------------------------------------------------------------------
def read_adapter(directory: str | os.PathLike) -> tuple[PeftConfig, dict[str, torch.Tensor]]:
    """An adapter directory's PEFT config and tensors (safetensors, or a weights-only torch file)."""
    directory = Path(directory)
    config = PeftConfig.from_pretrained(str(directory))
    weights = directory / ADAPTER_WEIGHTS
    if weights.is_file():
        return config, load_file(weights)
    legacy = directory / "adapter_model.bin"
    if legacy.is_file():
        return config, torch.load(legacy, map_location="cpu", weights_only=True)
    raise WeightsMismatchError(source=str(directory), hint=f"no {ADAPTER_WEIGHTS} in {directory}")


def names_transformers_modules(model, state: dict[str, torch.Tensor]) -> bool:
    """Whether the adapter tensors name modules the zoo model does not have (transformers' names)."""
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    own = {name for name, _ in base.named_modules()}
    for key in state:
        split = _split_key(key)
        if split is not None:
            return split[0] not in own
    return False


def _load_adapter_directory(model, directory: Path, adapter_name: str, is_trainable: bool) -> PeftModel:
    config, state = read_adapter(directory)
    if names_transformers_modules(model, state):
        config, state = adapter_to_zoo(model, config, state)
    config.inference_mode = not is_trainable
    peft_model = PeftModel(model, config, adapter_name=adapter_name)
    result = peft.set_peft_model_state_dict(peft_model, state, adapter_name=adapter_name)
    missing = [k for k in result.missing_keys if adapter_name in k and _is_adapter_param(k)]
    if result.unexpected_keys or missing:
        raise WeightsMismatchError(
            missing=missing,
            unexpected=result.unexpected_keys,
            source=str(directory),
            hint="the adapter does not fit this model",
        )
    if not is_trainable:
        peft_model.eval()
    return peft_model


def _is_adapter_param(key: str) -> bool:
    return any(f".{kind}" in key for kind in ("lora_", "ia3_", "hada_", "lokr_", "vera_", "oft_", "boft_"))


def save_adapter(
    peft_model: PeftModel,
    save_directory: str | os.PathLike,
    adapter_name: str = "default",
    layout: str | None = None,
) -> Path:
    """Write ``peft_model``'s adapter as PEFT does (``adapter_config.json``, ``adapter_model.safetensors``),
    under transformers' module names where transformers has the model's class (``layout="transformers"``,
    the default there), else, or with ``layout="zoo"``, under the zoo's own (``attn.qkv``)."""
    if layout not in (None, "transformers", "zoo"):
        raise UnknownNameError("adapter layout", layout, ("transformers", "zoo"))
    if layout is None:
        has_counterpart = getattr(peft_model.get_base_model(), "transformers_architecture", None) is not None
        layout = "transformers" if has_counterpart else "zoo"
    config = peft_model.peft_config[adapter_name]
    state = peft.get_peft_model_state_dict(peft_model, adapter_name=adapter_name)
    if layout == "transformers":
        config, state = adapter_to_transformers(peft_model, config, state)
    directory = Path(save_directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().contiguous() for k, v in state.items()},
        directory / ADAPTER_WEIGHTS,
        metadata={"format": "pt"},
    )
    config = copy.deepcopy(config)
    config.inference_mode = True
    config.save_pretrained(str(directory))
    return directory


# -- adapters from a directory or the Hub ------------------------------------------------------------
class AdapterNotFoundError(CheckpointNotFoundError):
    """An adapter that is neither a local adapter directory nor a reachable Hub repository."""


class AdapterMismatchError(ZooError, ValueError):
    """An adapter whose layers or shapes do not fit the model it is loaded onto."""


@contextmanager
def _peft_probe_without_warning():
    # PEFT 0.21 reads model.is_gradient_checkpointing, which transformers 5 deprecates: the warning
    # points at PEFT's internals, not at anything the caller can change.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield


def resolve_adapter(
    adapter: str | os.PathLike,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
) -> Path:
    """A local directory holding ``adapter_config.json``: ``adapter`` itself, or a Hub snapshot of it."""
    path = Path(adapter).expanduser()
    if path.is_dir():
        if not (path / ADAPTER_CONFIG).is_file():
            raise AdapterNotFoundError(
                f"adapter directory {path} holds no {ADAPTER_CONFIG}; write one with "
                "peft_model.save_pretrained(directory)"
            )
        return path
    if path.exists() or not _HUB_ID.match(str(adapter)):
        raise AdapterNotFoundError(
            f"adapter {str(adapter)!r} is not a directory holding {ADAPTER_CONFIG} nor a Hub id 'owner/name'"
        )
    try:
        snapshot = Path(
            snapshot_download(
                str(adapter),
                revision=revision,
                cache_dir=cache_dir,
                token=token,
                local_files_only=hub_constants.HF_HUB_OFFLINE,
                allow_patterns=_ADAPTER_PATTERNS,
            )
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled, TransportError, OSError) as error:
        at = f" at revision {revision!r}" if revision else ""
        raise AdapterNotFoundError(
            f"adapter {str(adapter)!r}{at} is neither a local directory nor a reachable Hub repository "
            f"({type(error).__name__}); with HF_HUB_OFFLINE=1 only the Hugging Face cache is searched"
        ) from None
    if not (snapshot / ADAPTER_CONFIG).is_file():
        raise AdapterNotFoundError(f"Hub repository {str(adapter)!r} holds no {ADAPTER_CONFIG}")
    return snapshot


def load_adapter(
    model: torch.nn.Module,
    adapter: str | os.PathLike,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    is_trainable: bool = False,
    *,
    adapter_name: str = "default",
) -> PeftModel:
    """``model`` (a zoo model) with the PEFT adapter from a local directory or a Hub id (``revision``
    pins a commit), in either naming: one trained on transformers' class of the architecture
    (``q_proj`` / ``k_proj`` / ``v_proj``) is renamed and fused on the way, exactly.

    Frozen for inference unless ``is_trainable``; ``merge_and_unload()`` on the result gives a plain model.
    """
    directory = resolve_adapter(adapter, revision=revision, cache_dir=cache_dir, token=token)
    try:
        with _peft_probe_without_warning():  # either naming: transformers' (q_proj, ...) or the zoo's
            return _load_adapter_directory(model, directory, adapter_name, is_trainable)
    except AdapterConversionError:
        raise
    except (RuntimeError, ValueError, KeyError) as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
        detail = next((line for line in lines if "size mismatch" in line), lines[0])
        raise AdapterMismatchError(
            f"adapter {str(adapter)!r} does not fit {type(model).__name__}: {detail} (was it trained on "
            "this model and head, with the same number of labels?)"
        ) from None
