"""A model behind four calls, for custom (RL-style) loops where ``Trainer`` does not fit (ReaLHF's ModelInterface).

:class:`ModelInterface` wraps a :class:`~auto_loader.ModelBundle` set up by a backend (``plain``,
``accelerate``, ``deepspeed``, ``fsdp2``; see :mod:`trainers.backend`). Every call takes and returns
dicts of CPU tensors; tensors move to the bundle's device inside::

    from auto_loader import make_model
    from trainers.interface import ModelInterface

    actor = ModelInterface(make_model("gpt2-tiny-dir"), lr=1e-5, backend="plain")
    for prompts in prompt_batches:  # {"input_ids": ..., "attention_mask": ...}, left-padded
        rollout = actor.generate(prompts, max_new_tokens=32, do_sample=True)["sequences"]
        rewards = reward_fn(rollout)
        batch = {"input_ids": rollout, "attention_mask": (rollout != pad_id).long(), "rewards": rewards}

        def policy_loss(outputs, batch):  # REINFORCE on the sampled tokens
            logp = outputs.logits[:, :-1].log_softmax(-1).gather(-1, batch["input_ids"][:, 1:, None])
            return -(logp.squeeze(-1).sum(-1) * batch["rewards"]).mean()

        stats = actor.train_step(batch, loss_fn=policy_loss)  # {"loss", "grad_norm", "lr"}
    actor.evaluate(held_out_batches)  # {"loss", "num_target_tokens", "num_examples", "num_batches"}
    actor.save("actor-final")  # save_pretrained + tokenizer, atomically

Under a distributed backend every rank calls every method (they are collective); ``save`` writes on
rank 0 only.
"""

from __future__ import annotations

import contextlib
import inspect
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from auto_loader import ModelBundle
from zoo.errors import ZooError
from zoo.fused_loss import plain_loss

from .backend import ModelBackend, OptimizerSpec, make_backend
from .compile import compile_errors, compile_model

__all__ = ["InterfaceError", "ModelInterface"]

# A loss of the model outputs and the (device) batch, for train steps that are not the model's own loss.
LossFunction = Callable[[Any, dict[str, torch.Tensor]], torch.Tensor]


class InterfaceError(ZooError, ValueError):
    """A batch the interface cannot use (no labels and no loss function, a value that is not a tensor)."""


class ModelInterface:
    """``train_step``, ``evaluate``, ``inference``, ``generate`` and ``save`` on one model.

    ``optimizer``: an optimizer, a function of the trainable parameters returning one, or None for
    AdamW(``lr``, ``weight_decay``). ``lr_scheduler``: a function of the optimizer returning a scheduler,
    stepped after every ``train_step``. ``max_grad_norm`` clips (None: no clipping). ``compile``: True (inductor)
    or a ``torch.compile`` backend name: ``train_step`` runs the model compiled with ``fullgraph=True``
    (see :mod:`trainers.compile`; a failure raises ``CompileError``). Other keyword
    arguments are the backend's options (``zero_stage`` / ``config`` for DeepSpeed, ``fully_shard``
    options for FSDP2, ``Accelerator`` options for Accelerate).
    """

    def __init__(
        self,
        bundle: ModelBundle,
        optimizer: OptimizerSpec = None,
        *,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        backend: str | ModelBackend = "plain",
        max_grad_norm: float | None = 1.0,
        lr_scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
        compile: bool | str = False,
        **backend_options: Any,
    ):
        if isinstance(backend, str):
            backend = make_backend(backend, max_grad_norm=max_grad_norm, **backend_options)
        self.backend = backend
        self.bundle, self.optimizer = backend.initialize(bundle, optimizer, lr=lr, weight_decay=weight_decay)
        self.lr_scheduler = lr_scheduler(self.optimizer) if lr_scheduler is not None else None
        # compile=True (inductor) or a backend name: train_step runs the module as one compiled graph
        self._train_forward = self.module
        if compile:
            self._train_forward = compile_model(
                self.module, backend="inductor" if compile is True else compile
            )

    @property
    def module(self) -> nn.Module:
        """What the backend runs (the model, or a wrapper of it: DDP, a DeepSpeed engine)."""
        return self.bundle.module

    @property
    def model(self) -> nn.Module:
        """The model itself, without a backend's wrapper."""
        return self.backend.unwrap()

    @property
    def device(self) -> torch.device:
        return self.bundle.device

    # -- calls --------------------------------------------------------------------------------------
    def train_step(self, batch: Mapping[str, torch.Tensor], loss_fn: LossFunction | None = None) -> dict:
        """Forward, backward, clip, optimizer step, zero the gradients. The loss is the model's own
        (``batch`` has labels) or ``loss_fn(outputs, device_batch)``.

        Returns ``loss`` (before the step), ``grad_norm`` (before clipping) and ``lr`` (the step's).
        """
        self.module.train()
        device_batch = self._to_device(batch)
        inputs = device_batch if loss_fn is None else self._model_inputs(device_batch)
        # loss_fn reads the logits: with labels in the batch, keep them differentiable (no chunked loss)
        own_loss = contextlib.nullcontext() if loss_fn is None else plain_loss(self.module)
        with compile_errors(self.module, getattr(self._train_forward, "zoo_compile_options", {})), own_loss:
            outputs = self._train_forward(**inputs)
            loss = outputs.loss if loss_fn is None else loss_fn(outputs, device_batch)
        if loss is None:
            raise InterfaceError(
                f"the model computed no loss from a batch with keys {sorted(batch)}: "
                "add labels to the batch or pass loss_fn=lambda outputs, batch: ..."
            )
        lr = self.optimizer.param_groups[0]["lr"]
        self.backend.backward(loss)
        grad_norm = self.backend.step()
        if self.lr_scheduler is not None:
            self.lr_scheduler.step()
        return {
            "loss": loss.detach().float().cpu(),
            "grad_norm": torch.as_tensor(grad_norm).detach().float().cpu(),
            "lr": torch.tensor(float(lr)),
        }

    @torch.no_grad()
    def evaluate(self, batches: Iterable[Mapping[str, torch.Tensor]]) -> dict:
        """The model's loss over ``batches`` (they need labels), averaged as one big batch would be:
        token-level losses weighted by their target tokens (labels not -100; for a causal LM, those
        after the first position), sequence-level losses by their examples."""
        was_training = self.module.training
        self.module.eval()
        total = torch.zeros((), dtype=torch.float64)
        weights = targets = examples = num_batches = 0
        try:
            for batch in batches:
                outputs = self.module(**self._to_device(batch))
                if outputs.loss is None:
                    raise InterfaceError(
                        f"evaluate needs labels; batch {num_batches} has keys {sorted(batch)}"
                    )
                count, weight = self._targets(batch["labels"])
                total += outputs.loss.detach().double().cpu() * weight
                weights += weight
                targets += count
                examples += int(batch["labels"].shape[0])
                num_batches += 1
        finally:
            self.module.train(was_training)
        return {
            "loss": (total / weights).float() if weights else torch.tensor(float("nan")),
            "num_target_tokens": torch.tensor(targets),
            "num_examples": torch.tensor(examples),
            "num_batches": torch.tensor(num_batches),
        }

    @torch.no_grad()
    def inference(self, batch: Mapping[str, torch.Tensor], **forward_kwargs: Any) -> dict:
        """One forward pass without gradients: every tensor output (``logits``, ``loss`` when labels are
        given, ``hidden_states`` as a tuple when asked for) on the CPU."""
        was_training = self.module.training
        self.module.eval()
        try:
            outputs = self.module(**self._to_device(batch), **forward_kwargs)
        finally:
            self.module.train(was_training)
        return _cpu_tensors(outputs)

    @torch.no_grad()
    def generate(self, batch: Mapping[str, torch.Tensor], **generation_kwargs: Any) -> dict:
        """``model.generate(**batch, **generation_kwargs)``: ``sequences`` (and ``scores`` etc. with
        ``return_dict_in_generate=True``). Decoder-only sequences start with the prompt."""
        model = self.model
        was_training = model.training
        model.eval()
        try:
            outputs = model.generate(**self._to_device(batch), **generation_kwargs)
        finally:
            model.train(was_training)
        if isinstance(outputs, torch.Tensor):
            return {"sequences": outputs.cpu()}
        return _cpu_tensors(outputs)

    def save(self, directory: str | Path) -> Path:
        """``save_pretrained`` and the tokenizer into ``directory``, atomically: written to a temporary
        directory beside it and renamed into place, so an error mid-save leaves the last save whole."""
        directory = Path(directory).absolute()
        state_dict = self.backend.full_state_dict()  # collective: every rank gathers
        if self.backend.is_main_process:
            directory.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.saving-", dir=directory.parent))
            staging.chmod(0o755)  # mkdtemp's 0o700 would otherwise become the saved directory's mode
            try:
                self.model.save_pretrained(staging, state_dict=state_dict)
                if self.bundle.tokenizer is not None:
                    self.bundle.tokenizer.save_pretrained(staging)
                _replace_directory(staging, directory)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        self.backend.barrier()
        return directory

    # -- helpers ------------------------------------------------------------------------------------
    def _to_device(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        moved = {}
        for key, value in batch.items():
            if not isinstance(value, torch.Tensor):
                raise InterfaceError(
                    f"batch[{key!r}] is a {type(value).__name__}; the interface takes a dict of tensors"
                )
            moved[key] = value.to(self.device)
        return moved

    def _model_inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The keys forward names as parameters; the others (rewards, advantages) are for ``loss_fn`` only."""
        parameters = inspect.signature(self.model.forward).parameters
        return {key: value for key, value in batch.items() if key in parameters}

    def _targets(self, labels: torch.Tensor) -> tuple[int, int]:
        """(target tokens, loss weight) of one batch's labels."""
        if labels.is_floating_point() or labels.dim() < 2:  # one label (or label vector) per example
            return 0, int(labels.shape[0])
        try:
            criterion = getattr(self.model, "criterion", None)
            shifted = criterion is not None and criterion.shifts_labels
        except ZooError:  # a class that declares no criterion: count the labels as given
            shifted = False
        count = int((labels[..., 1:] if shifted else labels).ne(-100).sum())
        return count, count


def _cpu_tensors(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Tensor values (and tuples of tensors) on the CPU; caches and other objects are left out."""
    result = {}
    for key, value in outputs.items():
        if isinstance(value, torch.Tensor):
            result[key] = value.detach().cpu()
        elif isinstance(value, tuple) and value and all(isinstance(v, torch.Tensor) for v in value):
            result[key] = tuple(v.detach().cpu() for v in value)
    return result


def _replace_directory(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``; an existing ``target`` is set aside first and removed last."""
    if not target.exists():
        source.rename(target)
        return
    previous = Path(tempfile.mkdtemp(prefix=f".{target.name}.previous-", dir=target.parent))
    previous.rmdir()
    target.rename(previous)
    try:
        source.rename(target)
    except BaseException:
        previous.rename(target)
        raise
    shutil.rmtree(previous, ignore_errors=True)
