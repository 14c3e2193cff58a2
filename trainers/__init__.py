"""trainers: the Hugging Face ``Trainer`` / Accelerate glue for every task and family.

``build_trainer`` and ``run_task`` wire a task's data pipeline, metrics and outputs into
``transformers.Trainer``; ``trainers.card`` writes the model card and loss curve of a run.
``ModelInterface`` over a ``ModelBackend`` (plain, Accelerate, DeepSpeed, FSDP2) serves custom loops;
``trainers.distributed`` ships the Accelerate / DeepSpeed configs; ``trainers.lora`` sets up PEFT;
``trainers.compile`` compiles training as one graph (``torch_compile=True``, ``ModelInterface(compile=...)``).
"""

from .backend import BackendError, ModelBackend, backend_names, initialize, make_backend
from .compile import CompileError, compile_model
from .interface import InterfaceError, ModelInterface
from .task_trainer import (
    RunResult,
    TrainingSetupError,
    ZooSeq2SeqTrainer,
    ZooTrainer,
    build_trainer,
    last_complete_checkpoint,
    read_results,
    run_task,
    save_outputs,
)

__all__ = [
    "BackendError",
    "CompileError",
    "compile_model",
    "InterfaceError",
    "ModelBackend",
    "ModelInterface",
    "backend_names",
    "initialize",
    "make_backend",
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
