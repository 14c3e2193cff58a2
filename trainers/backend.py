"""Model backends: how a model is set up to train, and how a training step runs on it (ReaLHF's ModelBackend).

``initialize(bundle, backend, ...) -> (bundle, optimizer)`` prepares a :class:`~auto_loader.ModelBundle`:

| backend | set-up | backward / step |
|---|---|---|
| ``"plain"`` | the module on ``bundle.device``, ``torch.optim.AdamW`` | ``loss.backward()``, clip, ``optimizer.step()`` |
| ``"accelerate"`` | ``Accelerator().prepare(model, optimizer)`` (DDP under ``accelerate launch`` / torchrun) | ``accelerator.backward``, ``accelerator.clip_grad_norm_`` |
| ``"deepspeed"`` | ``deepspeed.initialize`` with a ZeRO config dict (gloo on CPU) | ``engine.backward``, ``engine.step`` |
| ``"fsdp2"`` | ``fully_shard`` on every ``_no_split_modules`` block, then the root (gloo on CPU) | ``loss.backward()``, clip over DTensors, ``optimizer.step()`` |

The distributed backends start the default process group from the torchrun environment (``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) when it is not started yet, or as a one-process group
without it. :class:`~trainers.interface.ModelInterface` drives a backend object; ``initialize`` is for
loops that only want the prepared model and optimizer.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.distributed as dist
from torch import nn

from auto_loader import ModelBundle
from zoo.errors import UnknownNameError, ZooError

__all__ = [
    "AccelerateBackend",
    "BackendError",
    "DeepSpeedBackend",
    "FSDP2Backend",
    "ModelBackend",
    "PlainBackend",
    "backend_names",
    "initialize",
    "make_backend",
]


# An optimizer, a function of the trainable parameters returning one, or None (AdamW).
OptimizerSpec = torch.optim.Optimizer | Callable[[list[nn.Parameter]], torch.optim.Optimizer] | None


class BackendError(ZooError, RuntimeError):
    """A backend cannot set up this model (e.g. FSDP2 on a model with no ``_no_split_modules``)."""


class ModelBackend(ABC):
    """One way to train a model: set it up once (:meth:`initialize`), then backward and step per batch."""

    name: ClassVar[str]
    # False where set-up replaces the parameters (FSDP2's DTensors): an optimizer must be built after it.
    accepts_built_optimizer: ClassVar[bool] = True

    def __init__(self, max_grad_norm: float | None = 1.0, **options: Any):
        self.max_grad_norm = max_grad_norm
        self.options = options
        self.module: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def initialize(
        self,
        bundle: ModelBundle,
        optimizer: OptimizerSpec = None,
        *,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> tuple[ModelBundle, torch.optim.Optimizer]:
        """Prepare ``bundle.module`` and its optimizer: ``optimizer`` (an optimizer, or a function of the
        trainable parameters returning one), else AdamW(lr, weight_decay, betas) over them."""
        if isinstance(optimizer, torch.optim.Optimizer) and not self.accepts_built_optimizer:
            raise BackendError(
                f"the {self.name} backend replaces the parameters, so an optimizer built before it would update "
                "the old ones; pass a function of the parameters instead, e.g. "
                "optimizer=lambda params: torch.optim.AdamW(params, lr=1e-3)"
            )

        def make_optimizer(params: list[nn.Parameter]) -> torch.optim.Optimizer:
            if optimizer is None:
                return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)
            return optimizer if isinstance(optimizer, torch.optim.Optimizer) else optimizer(params)

        bundle, built = self._prepare(bundle, make_optimizer)
        self.module, self.optimizer = bundle.module, built
        return bundle, built
        self.module, self.optimizer = bundle.module, optimizer
        return bundle, optimizer

    @abstractmethod
    def _prepare(self, bundle: ModelBundle, make_optimizer) -> tuple[ModelBundle, torch.optim.Optimizer]: ...

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> torch.Tensor:
        """Clip (when ``max_grad_norm``), update, zero the gradients; the gradient norm before clipping."""
        norm = self._clip(self.max_grad_norm if self.max_grad_norm is not None else float("inf"))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    def _clip(self, max_norm: float) -> torch.Tensor:
        return torch.nn.utils.clip_grad_norm_(_trainable(self.module), max_norm)

    def unwrap(self) -> nn.Module:
        """The model itself (``save_pretrained``, ``generate``, its config), not a wrapper around it."""
        return self.module

    def full_state_dict(self) -> dict[str, torch.Tensor] | None:
        """The whole model's weights for saving (collective on every rank); None: the module's own."""
        return None

    @property
    def is_main_process(self) -> bool:
        return not dist.is_initialized() or dist.get_rank() == 0

    def barrier(self) -> None:
        if dist.is_initialized():
            dist.barrier()


class PlainBackend(ModelBackend):
    """The model on its device, a torch optimizer, nothing else."""

    name = "plain"

    def _prepare(self, bundle, make_optimizer):
        module = bundle.module.to(bundle.device)
        return dataclasses.replace(bundle, module=module), make_optimizer(_trainable(module))


class AccelerateBackend(ModelBackend):
    """``accelerate.Accelerator(**options).prepare(model, optimizer)``: one process, or DDP when launched
    with ``accelerate launch`` / torchrun. ``cpu`` defaults to whether the bundle's device is the CPU."""

    name = "accelerate"

    def _prepare(self, bundle, make_optimizer):
        from accelerate import Accelerator

        options = {"cpu": bundle.device.type == "cpu", **self.options}
        self.accelerator = Accelerator(**options)
        optimizer = make_optimizer(_trainable(bundle.module))
        module, optimizer = self.accelerator.prepare(bundle.module, optimizer)
        return dataclasses.replace(bundle, module=module, device=self.accelerator.device), optimizer

    def backward(self, loss):
        self.accelerator.backward(loss)

    def _clip(self, max_norm):
        return self.accelerator.clip_grad_norm_(_trainable(self.module), max_norm)

    def unwrap(self):
        return self.accelerator.unwrap_model(self.module)


class DeepSpeedBackend(ModelBackend):
    """``deepspeed.initialize`` with the ZeRO stage ``zero_stage`` (default 2); ``config`` (a dict) is merged
    over the generated one. The optimizer is a torch optimizer (DeepSpeed's fused ones need a GPU)."""

    name = "deepspeed"

    def _prepare(self, bundle, make_optimizer):
        import deepspeed

        options = dict(self.options)
        stage = options.pop("zero_stage", 2)
        user_config = options.pop("config", {})
        if options:
            raise BackendError(f"unknown deepspeed option(s) {sorted(options)}; valid: zero_stage, config")
        self.zero_stage = stage
        config = {
            "train_micro_batch_size_per_gpu": 1,
            "gradient_accumulation_steps": 1,
            "zero_optimization": {"stage": stage},
            "zero_allow_untested_optimizer": True,  # a torch AdamW, as the Trainer passes one
            **({"gradient_clipping": self.max_grad_norm} if self.max_grad_norm is not None else {}),
            **user_config,
        }
        _set_distributed_environment()
        deepspeed.init_distributed(dist_backend=_process_group_backend(bundle.device), verbose=False)
        module = bundle.module.to(bundle.device)
        engine, optimizer, _, _ = deepspeed.initialize(
            model=module, optimizer=make_optimizer(_trainable(module)), config=config
        )
        return dataclasses.replace(bundle, module=engine), optimizer

    def backward(self, loss):
        self.module.backward(loss)

    def step(self):
        self.module.step()  # clips (``gradient_clipping``), updates and zeroes the gradients
        norm = self.module.get_global_grad_norm()
        return torch.as_tensor(float("nan") if norm is None else float(norm))

    def unwrap(self):
        return self.module.module

    def full_state_dict(self):
        if self.zero_stage < 3:
            return None
        import deepspeed

        params = list(self.unwrap().parameters())
        with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
            return {name: t.detach().cpu().clone() for name, t in self.unwrap().state_dict().items()}


class FSDP2Backend(ModelBackend):
    """``torch.distributed.fsdp.fully_shard`` on each block named in the model's ``_no_split_modules`` and then
    on the root, over a 1-D device mesh of every rank; ``options`` go to ``fully_shard``
    (``reshard_after_forward``, ``mp_policy``, ...). Parameters become DTensors sharded on dim 0."""

    name = "fsdp2"
    accepts_built_optimizer = False

    def _prepare(self, bundle, make_optimizer):
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        module = bundle.module
        block_names = set(getattr(module, "_no_split_modules", None) or ())
        blocks = [m for m in module.modules() if type(m).__name__ in block_names]
        if not blocks:
            raise BackendError(
                f"fsdp2 shards {type(module).__name__} block by block, but it names no block classes that it "
                f"contains in _no_split_modules (got {sorted(block_names)}); valid: a model whose "
                "_no_split_modules lists its transformer block class"
            )
        _ensure_process_group(bundle.device)
        module = module.to(bundle.device)
        mesh = init_device_mesh(bundle.device.type, (dist.get_world_size(),))
        for block in blocks:
            fully_shard(block, mesh=mesh, **self.options)
        fully_shard(module, mesh=mesh, **self.options)
        return dataclasses.replace(bundle, module=module), make_optimizer(_trainable(module))

    def _clip(self, max_norm):
        norm = super()._clip(max_norm)
        return norm.full_tensor() if hasattr(norm, "full_tensor") else norm

    def full_state_dict(self):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_model_state_dict(self.module, options=options)


_BACKENDS: dict[str, type[ModelBackend]] = {
    cls.name: cls for cls in (PlainBackend, AccelerateBackend, DeepSpeedBackend, FSDP2Backend)
}


def backend_names() -> list[str]:
    return list(_BACKENDS)


def make_backend(name: str, *, max_grad_norm: float | None = 1.0, **options: Any) -> ModelBackend:
    """The backend called ``name`` (``plain``, ``accelerate``, ``deepspeed``, ``fsdp2``), not yet initialised."""
    if name not in _BACKENDS:
        raise UnknownNameError("model backend", name, _BACKENDS)
    return _BACKENDS[name](max_grad_norm=max_grad_norm, **options)


def initialize(
    bundle: ModelBundle,
    backend: str = "plain",
    optimizer: OptimizerSpec = None,
    *,
    lr: float = 1e-4,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    max_grad_norm: float | None = 1.0,
    **options: Any,
) -> tuple[ModelBundle, torch.optim.Optimizer]:
    """Set ``bundle`` up for training with ``backend``; returns the prepared bundle (its module may be a
    wrapper: an Accelerate-prepared module, a DeepSpeed engine) and the optimizer."""
    model_backend = make_backend(backend, max_grad_norm=max_grad_norm, **options)
    return model_backend.initialize(bundle, optimizer, lr=lr, weight_decay=weight_decay, betas=betas)


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def _process_group_backend(device: torch.device) -> str:
    return "gloo" if device.type == "cpu" else "nccl"


def _set_distributed_environment() -> None:
    """torchrun's variables for a one-process group, where the process was not launched by torchrun."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(free_port()))


def _ensure_process_group(device: torch.device) -> None:
    if dist.is_initialized():
        return
    _set_distributed_environment()
    dist.init_process_group(_process_group_backend(device))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
