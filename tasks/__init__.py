"""tasks: task heads written once for every family (``tasks.heads``), and per task the record schema,
preprocessing, collator, metric and predictor (``get_task(name)``).

Task names follow FlagAI: ``title-generation``, ``poetry-generation``, ``seq2seq``, ``lm``, ``masklm``,
``ner`` (alias ``sequence-labeling``), ``ner-crf``, ``classification``, ``semantic-matching``,
``embedding``. ``register_task`` adds more.
"""

from .base import (
    LabelError,
    Task,
    TaskDataError,
    get_task,
    register_task,
    resolve_family,
    task_names,
)
from .classification import ClassificationPredictor, ClassificationTask, SemanticMatchingTask
from .embedding import EmbeddingPredictor, EmbeddingTask
from .generation import PoetryGenerationTask, Seq2SeqPredictor, Seq2SeqTask, TitleGenerationTask
from .labeling import CRFSequenceLabelingTask, EntityPredictor, SequenceLabelingTask
from .language_modeling import CausalLMTask, ContinuationPredictor, MaskedLMTask, MaskFillPredictor
from .seq2seq_formats import seq2seq_format

_ner = SequenceLabelingTask()
for _task in (
    TitleGenerationTask(),
    PoetryGenerationTask(),
    Seq2SeqTask(),
    CausalLMTask(),
    MaskedLMTask(),
    _ner,
    CRFSequenceLabelingTask(),
    ClassificationTask(),
    SemanticMatchingTask(),
    EmbeddingTask(),
):
    register_task(_task.name, _task)
register_task("sequence-labeling", _ner)

__all__ = [
    "CRFSequenceLabelingTask",
    "CausalLMTask",
    "ClassificationPredictor",
    "ClassificationTask",
    "ContinuationPredictor",
    "EmbeddingPredictor",
    "EmbeddingTask",
    "EntityPredictor",
    "LabelError",
    "MaskFillPredictor",
    "MaskedLMTask",
    "PoetryGenerationTask",
    "SemanticMatchingTask",
    "Seq2SeqPredictor",
    "Seq2SeqTask",
    "SequenceLabelingTask",
    "Task",
    "TaskDataError",
    "TitleGenerationTask",
    "get_task",
    "register_task",
    "resolve_family",
    "seq2seq_format",
    "task_names",
]
