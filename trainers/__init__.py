"""trainers: the Hugging Face ``Trainer`` / Accelerate glue for every task and family.

``build_trainer`` and ``run_task`` wire a task's data pipeline, metrics and outputs into
``transformers.Trainer``; ``trainers.card`` writes the model card and loss curve of a run.
"""

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
