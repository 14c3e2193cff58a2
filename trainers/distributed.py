"""Distributed training: the shipped launch configs, and a check that refuses set-ups that would not do
what they say.

``config_path(name)`` finds a shipped file: Accelerate configs (``ddp``, ``ddp_cpu``, ``fsdp2``,
``deepspeed_zero2``, ``deepspeed_zero3``, ``deepspeed_zero3_offload``; ``accelerate launch
--config_file ...``) and DeepSpeed JSONs (``ds_zero2``, ``ds_zero3``, ``ds_zero3_offload``;
``TrainingArguments(deepspeed=...)``, with ``"auto"`` values the Trainer fills in).

``check_distributed_setup(args, model)`` runs before training. It raises where the run would silently
be something else or fail deep inside a launcher:

- FSDP asked for on a machine without an accelerator. Trainer and Accelerate then quietly train with
  plain DDP (FSDP2) or fail (FSDP1): every rank holds the whole model, so a model that needed sharding
  runs out of memory later, and one that did not gives timings that mean nothing. That is an error
  rather than a warning because a warning is one line among N ranks' logs, and the run it lets
  through is not the run that was asked for.
- Several processes on a machine without an accelerator but ``use_cpu=False``: Accelerate then sets up
  no process group and each process trains alone (world size 1), silently.
- DeepSpeed asked for but not installed (the error gives the install command).
- DeepSpeed that has to compile an op at start-up (every op on a CPU-only machine; the CPU Adam of
  ZeRO-Offload) where no C++ compiler or no ninja is there to compile it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zoo.errors import ConfigError, UnknownNameError, ZooError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEEPSPEED_INSTALL = 'pip install "zoo-models[deepspeed]"  (or: pip install deepspeed)'


class DistributedSetupError(ZooError, RuntimeError):
    """The requested distributed set-up cannot run as asked on this machine; says why and what to do."""


class FsdpUnavailableError(DistributedSetupError):
    """FSDP through Trainer/Accelerate was requested where it would silently become DDP."""


class DeepSpeedUnavailableError(DistributedSetupError):
    """DeepSpeed was requested but is not installed, or cannot build the ops this run needs."""


def config_names() -> list[str]:
    """The shipped configs, by name without extension (``ddp``, ``fsdp2``, ``ds_zero3``, ...)."""
    return sorted(path.stem for path in CONFIG_DIR.iterdir() if path.suffix in (".yaml", ".json"))


def config_path(name: str) -> Path:
    """The path of a shipped config, by name with or without its extension (``"fsdp2"``,
    ``"ds_zero3.json"``). Raises ``UnknownNameError`` listing the valid names."""
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix in (".yaml", ".json") else name
    for suffix in (".yaml", ".json"):
        path = CONFIG_DIR / f"{stem}{suffix}"
        if path.is_file() and (stem == name or path.name == name):
            return path
    raise UnknownNameError("distributed config", name, config_names())


def fsdp_transformer_layer_classes(model: torch.nn.Module) -> list[str]:
    """The block class names FSDP wraps one by one: the model's ``_no_split_modules``.

    Accelerate's ``TRANSFORMER_BASED_WRAP`` reads the same attribute when the config names no
    ``fsdp_transformer_layer_cls_to_wrap``. Raises ``DistributedSetupError`` when the model declares none,
    or declares a class that none of its modules is."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PEFT wrapper
    declared = list(getattr(base, "_no_split_modules", None) or [])
    if not declared:
        raise DistributedSetupError(
            f"{type(base).__name__} declares no _no_split_modules, so FSDP's transformer-based wrap has no "
            "block class to wrap; set _no_split_modules = ['<Block class name>'] on the model class or name "
            "the class in fsdp_config['transformer_layer_cls_to_wrap']"
        )
    present = {type(module).__name__ for module in base.modules()}
    absent = [name for name in declared if name not in present]
    if absent:
        raise DistributedSetupError(
            f"{type(base).__name__}._no_split_modules names {absent}, but the model has no module of that "
            f"class; its block classes are: {', '.join(sorted(present))}"
        )
    return declared


@dataclass(frozen=True)
class DistributedPlan:
    """What a run will do, as ``check_distributed_setup`` understood it."""

    kind: str  # "single", "ddp", "fsdp" or "deepspeed"
    world_size: int
    zero_stage: int | None = None
    offload_optimizer: str | None = None  # "cpu", "nvme" or None
    offload_param: str | None = None


def check_distributed_setup(args, model: torch.nn.Module | None = None) -> DistributedPlan:
    """Check ``args`` (a ``TrainingArguments``) against this machine before training; see the module doc.

    Returns the plan; raises ``FsdpUnavailableError``, ``DeepSpeedUnavailableError`` or
    ``DistributedSetupError``."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if _fsdp_requested(args):
        _check_fsdp(args, model)
        return DistributedPlan("fsdp", world_size)
    if world_size > 1 and not _has_accelerator() and not _uses_cpu(args):
        raise DistributedSetupError(
            f"{world_size} processes were launched on a machine without a GPU, but TrainingArguments has "
            "use_cpu=False: Accelerate then sets up no process group and every process trains its own copy "
            "of the model on its own batches (world_size 1 each), silently. Pass TrainingArguments("
            "use_cpu=True) to train with DDP over gloo (DeepSpeed too)."
        )
    config = deepspeed_config(args)
    if config is not None:
        return _check_deepspeed(config, world_size)
    return DistributedPlan("ddp" if world_size > 1 else "single", world_size)


def deepspeed_config(args) -> dict[str, Any] | None:
    """The DeepSpeed config a run uses: ``args.deepspeed`` (dict or JSON path), else the one
    ``accelerate launch`` passes in the environment; None when DeepSpeed is not requested."""
    source = getattr(args, "deepspeed", None)
    if not source and os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        source = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE", "none")
        if source == "none":  # an inline Accelerate config: the launcher exported each field
            env = os.environ.get
            return {
                "zero_optimization": {
                    "stage": int(env("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")),
                    "offload_optimizer": {
                        "device": env("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "none")
                    },
                    "offload_param": {"device": env("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE", "none")},
                }
            }
    if not source:
        return None
    if isinstance(source, dict):
        return source
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"DeepSpeed config {source!r} is not a file; shipped ones: {config_names()}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"DeepSpeed config {source} is not valid JSON: {error}") from error


def _fsdp_requested(args) -> bool:
    return (
        bool(getattr(args, "fsdp", None)) or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    )


def _uses_cpu(args) -> bool:
    return bool(getattr(args, "use_cpu", False)) or os.environ.get("ACCELERATE_USE_CPU", "false").lower() in (
        "true", "1", "yes",
    )  # fmt: skip


def _has_accelerator() -> bool:
    if hasattr(torch, "accelerator"):
        return torch.accelerator.is_available()
    return torch.cuda.is_available()


def _check_fsdp(args, model: torch.nn.Module | None) -> None:
    if _uses_cpu(args) or not _has_accelerator():
        reason = "use_cpu=True" if _uses_cpu(args) else "this machine has no CUDA/XPU accelerator"
        raise FsdpUnavailableError(
            f"FSDP was requested (TrainingArguments(fsdp=...) or accelerate launch with an FSDP config), but "
            f"{reason}. On CPU, Trainer and Accelerate do not shard: FSDP2 silently falls back to plain DDP "
            "(every rank keeps the whole model, gradients and optimizer state) and FSDP1 fails. Refusing "
            "rather than training unsharded. To get real sharding: run on GPUs with `accelerate launch "
            "--config_file trainers/configs/fsdp2.yaml train.py` (trainers.distributed.config_path('fsdp2')); "
            "or, on CPU, use the model-interface FSDP2 path under torchrun: "
            "trainers.interface.ModelInterface(bundle, backend='fsdp2'), which calls "
            "torch.distributed.fsdp.fully_shard on each block in fsdp_transformer_layer_classes(model) and "
            "then the model, over gloo; or drop fsdp to train with DDP knowingly."
        )
    if model is not None:
        wanted = (getattr(args, "fsdp_config", None) or {}).get("transformer_layer_cls_to_wrap")
        if wanted:
            present = {type(module).__name__ for module in model.modules()}
            absent = [
                name for name in ([wanted] if isinstance(wanted, str) else wanted) if name not in present
            ]
            if absent:
                raise DistributedSetupError(
                    f"fsdp_config transformer_layer_cls_to_wrap names {absent}, which {type(model).__name__} "
                    f"does not contain; its _no_split_modules are {getattr(model, '_no_split_modules', None)}"
                )
        else:
            fsdp_transformer_layer_classes(model)


def _check_deepspeed(config: dict[str, Any], world_size: int) -> DistributedPlan:
    if importlib.util.find_spec("deepspeed") is None:
        raise DeepSpeedUnavailableError(
            f"a DeepSpeed config was given, but deepspeed is not installed; install it with: {DEEPSPEED_INSTALL}"
        )
    zero = config.get("zero_optimization", {}) or {}
    stage = zero.get("stage", 0)
    offload_optimizer = _offload_device(zero.get("offload_optimizer"))
    offload_param = _offload_device(zero.get("offload_param"))
    needed = []  # (op name, why) that DeepSpeed would JIT-compile at start-up
    if not _has_accelerator():
        needed.append(("deepspeed_shm_comm", "DeepSpeed's CPU accelerator builds its shared-memory comm op"))
    if offload_optimizer:
        needed.append(("cpu_adam", f"offload_optimizer device={offload_optimizer!r} runs DeepSpeedCPUAdam"))
    missing_tools = _missing_build_tools([name for name, _ in needed])
    missing_tools += _incompatible_ops([name for name, _ in needed])
    if missing_tools:
        why = "; ".join(why for _, why in needed)
        raise DeepSpeedUnavailableError(
            f"this DeepSpeed run (ZeRO stage {stage}) must compile ops at start-up ({why}), but "
            f"{' and '.join(missing_tools)} {'is' if len(missing_tools) == 1 else 'are'} not available. Fix: "
            "install a C++ compiler (apt-get install g++, or set CXX) and ninja (pip install ninja), or "
            "install deepspeed with the ops prebuilt (DS_BUILD_CPU_ADAM=1 pip install deepspeed on a machine "
            "with a compiler), or drop the CPU offload (trainers/configs/ds_zero3.json)."
        )
    return DistributedPlan("deepspeed", world_size, stage, offload_optimizer, offload_param)


def _offload_device(section) -> str | None:
    device = (section or {}).get("device", "none") if isinstance(section, dict) else None
    return None if device in (None, "none") else device


_OP_BUILDERS = {"deepspeed_shm_comm": "ShareMemCommBuilder", "cpu_adam": "CPUAdamBuilder"}


def _incompatible_ops(ops: list[str]) -> list[str]:
    """DeepSpeed's own verdict (``OpBuilder.is_compatible``) on the ops this run will load."""
    if not ops:
        return []
    from deepspeed.accelerator import get_accelerator

    problems = []
    for name in ops:
        builder = get_accelerator().create_op_builder(_OP_BUILDERS[name])
        if builder is not None and not builder.is_compatible(verbose=False):
            problems.append(f"the {name} op ({getattr(builder, 'error_log', None) or 'not compatible'})")
    return problems


def _missing_build_tools(ops: list[str]) -> list[str]:
    """What is missing to JIT-build ``ops`` (ops DeepSpeed shipped prebuilt need nothing)."""
    if not ops:
        return []
    try:
        from deepspeed.git_version_info import installed_ops
    except ImportError:
        installed_ops = {}
    if all(installed_ops.get(name, False) for name in ops):
        return []
    missing = []
    compiler = os.environ.get("CXX")
    if not (shutil.which(compiler) if compiler else shutil.which("c++") or shutil.which("g++")):
        missing.append(f"a C++ compiler ({compiler!r} from CXX)" if compiler else "a C++ compiler (c++/g++)")
    from torch.utils.cpp_extension import is_ninja_available

    if not is_ninja_available():
        missing.append("ninja")
    return missing
