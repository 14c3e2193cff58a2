"""Training a task with the Hugging Face ``Trainer``: the task's data pipeline, metrics and outputs wired in.

``build_trainer`` turns (task, model, tokenizer, raw records, ``TrainingArguments``) into a
``transformers.Trainer`` — a ``Seq2SeqTrainer`` for generation tasks — with the task's
preprocessing, collator, ``compute_metrics`` and ``label_names``. ``run_task`` trains (resuming when
asked), evaluates, predicts and writes to ``output_dir``: model, tokenizer, ``all_results.json``,
a model card (``README.md``) and ``loss_curve.png``.

Generation metrics: encoder-decoders evaluate through ``predict_with_generate``; the other seq2seq
formats (prefix LM, UniLM, GLM) cannot generate from a teacher-forced batch, so their ROUGE comes
from the task's predictor on the evaluation records (beam search through ``generate`` as well).

Checkpoints are whole or ignored: ``resume_from_checkpoint=True`` takes the newest checkpoint whose
save completed (``trainer_state.json`` is written last), so a crash or Ctrl-C during a save never
loses the last good one; the final model is written to a temporary directory and moved in place.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel, set_peft_model_state_dict
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, Trainer, TrainingArguments

from tasks import Task, get_task
from tasks.packing import PackedCollator
from tasks.seq2seq_formats import seq2seq_format
from trainers.compile import CompileTimer, compile_errors
from zoo.adapters import (
    ADAPTER_WEIGHTS,
    adapter_to_zoo,
    names_transformers_modules,
    read_adapter,
    save_adapter,
)
from zoo.errors import ZooError
from zoo.hf_internals import special_tokens_aligned_for_use

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_STATE_FILE = "trainer_state.json"


class TrainingSetupError(ZooError, ValueError):
    """The training arguments cannot work for this task or model; the message says what to change."""


@dataclass
class RunResult:
    trainer: Trainer
    train_metrics: dict[str, float] = field(default_factory=dict)
    eval_metrics: dict[str, float] = field(default_factory=dict)
    predictions: list | None = None
    output_dir: Path | None = None


class _ZooTrainerMixin:
    """What both trainer classes add: the zoo model card, and generation metrics for every seq2seq format."""

    zoo_task: Task
    zoo_eval_records: Any = None
    zoo_labels: list | None = None
    zoo_base_model: str | None = None

    def train(self, *args, **kwargs):
        timer = None
        if self.args.torch_compile:
            timer = CompileTimer()
            self.add_callback(timer)
        try:
            with (
                special_tokens_aligned_for_use(self.model),
                compile_errors(self.model, self._compile_options()),
            ):
                output = super().train(*args, **kwargs)
        finally:
            if timer is not None:
                self.remove_callback(timer)
        if timer is not None:
            output.metrics.update(timer.metrics())  # compile time apart from the step time
        return output

    # -- packing: training reads packed rows; evaluation and prediction read whole records ---------
    # (entity spans, accuracy and generations are per record: a packed row would join its records)
    @contextlib.contextmanager
    def _records_unpacked(self):
        packed = self.data_collator
        if isinstance(packed, PackedCollator):
            self.data_collator = packed.collator
        try:
            yield
        finally:
            self.data_collator = packed

    def get_eval_dataloader(self, eval_dataset=None):
        with self._records_unpacked():
            return super().get_eval_dataloader(eval_dataset)

    def get_test_dataloader(self, test_dataset):
        with self._records_unpacked():
            return super().get_test_dataloader(test_dataset)

    # -- torch_compile: the whole model as one graph ----------------------------------------------
    def _build_accelerator_args(self, **kwargs) -> dict[str, Any]:
        args = super()._build_accelerator_args(**kwargs)
        plugin = args.get("dynamo_plugin")
        if plugin is not None and self.args.torch_compile:
            plugin.fullgraph = True  # every zoo family compiles without a graph break
        return args

    def _compile_options(self) -> dict[str, Any]:
        return {
            "fullgraph": True,
            "backend": self.args.torch_compile_backend,
            "mode": self.args.torch_compile_mode,
        }

    # -- adapters under transformers' module names in every checkpoint ----------------------------
    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        super()._save(output_dir, state_dict)
        if isinstance(self.model, PeftModel) and self.args.should_save:
            save_adapter(self.model, output_dir or self.args.output_dir)  # rewrites PEFT's zoo-named files

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        if not self._load_adapter_checkpoint(resume_from_checkpoint, model or self.model):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        if not self._load_adapter_checkpoint(self.state.best_model_checkpoint, self.model):
            super()._load_best_model()

    @staticmethod
    def _load_adapter_checkpoint(directory: str, model) -> bool:
        """Load a checkpoint's transformers-named adapter into ``model``'s active adapter; False: not one."""
        if not isinstance(model, PeftModel) or not (Path(directory) / ADAPTER_WEIGHTS).is_file():
            return False
        adapter_name = model.active_adapters[0]
        config, state = read_adapter(directory)
        if not names_transformers_modules(model, state):
            return False
        _, state = adapter_to_zoo(model, config, state)
        result = set_peft_model_state_dict(model, state, adapter_name=adapter_name)
        if result.unexpected_keys:
            raise TrainingSetupError(
                f"adapter checkpoint {directory} does not fit the model: {sorted(result.unexpected_keys)[:5]}"
            )
        return True

    def create_model_card(self, *args, **kwargs) -> None:  # Trainer.push_to_hub calls this
        from .card import write_training_card

        if self.is_world_process_zero():
            write_training_card(self, Path(self.args.output_dir))

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval", **kwargs):
        metrics = super().evaluate(
            eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix, **kwargs
        )
        if self._generates_outside_trainer() and self.zoo_eval_records is not None:
            predictor = self.zoo_task.predictor(self.model, self.processing_class)
            scores = self.zoo_task.evaluate(predictor, self.zoo_eval_records, **self._generation_settings())
            extra = {f"{metric_key_prefix}_{k}": float(v) for k, v in scores.items()}
            self.log(extra)
            metrics.update(extra)
        return metrics

    def _generates_outside_trainer(self) -> bool:
        return self.zoo_task.head == "seq2seq" and not getattr(self.model.config, "is_encoder_decoder", False)

    def _generation_settings(self) -> dict[str, Any]:
        args = self.args
        settings = {"num_beams": getattr(args, "generation_num_beams", None) or 1}
        if getattr(args, "generation_max_length", None):
            settings["max_new_tokens"] = args.generation_max_length
        return settings


class ZooTrainer(_ZooTrainerMixin, Trainer):
    """``transformers.Trainer`` with the zoo's model card and generation metrics."""


class ZooSeq2SeqTrainer(_ZooTrainerMixin, Seq2SeqTrainer):
    """``transformers.Seq2SeqTrainer`` with the zoo's model card and generation metrics."""


def _embedding_similarity(logits, labels):
    """Keep only the pair cosines (batch,) of an embedding head's outputs for ``compute_metrics``."""
    outputs = logits if isinstance(logits, (tuple, list)) else (logits,)
    return next(o for o in outputs if o is not None and o.ndim == 1)


def build_trainer(
    task: str | Task,
    model,
    tokenizer,
    args: TrainingArguments,
    train_records: Any = None,
    eval_records: Any = None,
    labels: list | None = None,
    max_length: int = 128,
    max_target_length: int | None = None,
    **trainer_kwargs,
) -> Trainer:
    """A Trainer for ``task`` on raw records of the task's schema (see ``tasks.get_task(name).record_schema``);
    a ``data_collator`` keyword (e.g. ``task.packing_collator(...)``) replaces the task's own."""
    task = get_task(task) if isinstance(task, str) else task
    _check_args(task, model, args)
    preprocess = {"max_length": max_length, "labels": labels}
    if task.head == "seq2seq" and max_target_length is not None:
        preprocess["max_target_length"] = max_target_length
    train_dataset = (
        task.preprocess(train_records, tokenizer, model, **preprocess) if train_records is not None else None
    )
    eval_dataset = (
        task.preprocess(eval_records, tokenizer, model, **preprocess) if eval_records is not None else None
    )
    if labels is None and getattr(model.config, "id2label", None) and task.head.startswith("sequence-"):
        labels = [model.config.id2label[i] for i in range(len(model.config.id2label))]
    if args.label_names is None:
        args.label_names = ["labels"]
    if args.dataloader_pin_memory and not torch.accelerator.is_available():
        args.dataloader_pin_memory = False  # nothing to pin to (torch warns on every data loader)
    args.remove_unused_columns = False  # the task's preprocessing keeps only what its collator needs

    is_seq2seq = task.head == "seq2seq"
    encoder_decoder = getattr(model.config, "is_encoder_decoder", False)
    compute_metrics = None
    if eval_dataset is not None and (not is_seq2seq or encoder_decoder):
        compute_metrics = task.compute_metrics(tokenizer, labels)
    if is_seq2seq and encoder_decoder and not getattr(args, "predict_with_generate", False):
        compute_metrics = None  # teacher-forced argmax is not a generation metric; loss only
    if task.head == "embedding":
        trainer_kwargs.setdefault("preprocess_logits_for_metrics", _embedding_similarity)

    if is_seq2seq and encoder_decoder and getattr(model, "generation_config", None) is not None:
        # mBART: predict_with_generate starts the targets with the tokenizer's tgt_lang code
        for key, value in seq2seq_format(tokenizer, model).language_kwargs.items():
            setattr(model.generation_config, key, value)
    trainer_class = ZooSeq2SeqTrainer if is_seq2seq else ZooTrainer
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=trainer_kwargs.pop("data_collator", None) or task.collator(tokenizer, model),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        **trainer_kwargs,
    )
    trainer.zoo_task = task
    trainer.zoo_eval_records = eval_records
    trainer.zoo_labels = labels
    trainer.zoo_base_model = getattr(model.config, "name_or_path", None) or None
    return trainer


def _check_args(task: Task, model, args: TrainingArguments) -> None:
    if task.head == "seq2seq" and not isinstance(args, Seq2SeqTrainingArguments):
        raise TrainingSetupError(
            f"task {task.name!r} needs Seq2SeqTrainingArguments (predict_with_generate, generation_max_length, "
            "generation_num_beams), not TrainingArguments"
        )
    try:
        from .distributed import check_distributed_setup
    except ImportError:
        return
    check_distributed_setup(args, model)


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest ``checkpoint-N`` whose save finished (it holds ``trainer_state.json``); None if there is none.

    Partial checkpoints (a save cut short by a crash or Ctrl-C) are skipped with a warning.
    """
    directory = Path(output_dir)
    if not directory.is_dir():
        return None
    found = sorted(
        (int(m.group(1)), path)
        for path in directory.iterdir()
        if path.is_dir() and (m := _CHECKPOINT.match(path.name))
    )
    for _, path in reversed(found):
        if (path / _STATE_FILE).is_file():
            return str(path)
        logger.warning("skipping %s: its save did not finish (no %s)", path, _STATE_FILE)
    return None


def run_task(
    task: str | Task,
    model,
    tokenizer,
    args: TrainingArguments,
    train_records: Any,
    eval_records: Any = None,
    labels: list | None = None,
    max_length: int = 128,
    max_target_length: int | None = None,
    resume_from_checkpoint: str | bool | None = None,
    predict_inputs: list | None = None,
    **trainer_kwargs,
) -> RunResult:
    """Train, evaluate, predict and save everything to ``args.output_dir``."""
    trainer = build_trainer(
        task, model, tokenizer, args, train_records, eval_records, labels, max_length, max_target_length,
        **trainer_kwargs,
    )  # fmt: skip
    if resume_from_checkpoint is True:
        resume_from_checkpoint = last_complete_checkpoint(args.output_dir)
        if resume_from_checkpoint is None:
            logger.warning(
                "no complete checkpoint in %s: training starts from the beginning", args.output_dir
            )
    train_output = trainer.train(resume_from_checkpoint=resume_from_checkpoint or None)
    result = RunResult(trainer, train_metrics=dict(train_output.metrics), output_dir=Path(args.output_dir))
    if trainer.eval_dataset is not None:
        result.eval_metrics = trainer.evaluate()
    if predict_inputs:
        result.predictions = trainer.zoo_task.predictor(trainer.model, tokenizer).predict(predict_inputs)
    save_outputs(trainer, {**result.train_metrics, **result.eval_metrics})
    return result


def save_outputs(trainer: Trainer, metrics: dict[str, float]) -> Path:
    """Model and tokenizer (written aside, then moved in place), metrics, trainer state, card, loss curve."""
    output_dir = Path(trainer.args.output_dir)
    if trainer.is_world_process_zero():
        output_dir.mkdir(parents=True, exist_ok=True)
    staging = output_dir / ".saving"
    trainer.save_model(str(staging))
    if trainer.is_world_process_zero():
        for path in staging.iterdir():
            os.replace(path, output_dir / path.name)
        shutil.rmtree(staging, ignore_errors=True)
        trainer.save_metrics("all", {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
        trainer.save_state()
        from .card import write_loss_curve, write_training_card

        write_loss_curve(trainer.state.log_history, output_dir / "loss_curve.png")
        write_training_card(trainer, output_dir)
    return output_dir


def read_results(output_dir: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(output_dir) / "all_results.json").read_text())


__all__ = [
    "RunResult",
    "TrainingSetupError",
    "ZooSeq2SeqTrainer",
    "ZooTrainer",
    "build_trainer",
    "last_complete_checkpoint",
    "read_results",
    "run_task",
    "save_outputs",
]
