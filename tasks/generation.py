"""Generation tasks (``seq2seq``, ``title-generation``, ``poetry-generation``): records ``{source, target}``.

The layout of a pair depends on the family (see :mod:`tasks.seq2seq_formats`); the head is always
the family's ``seq2seq`` head. Metrics are ROUGE-1/2/L F (characters for Chinese).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from zoo.inputs import check_model_inputs

from .base import (
    Task,
    TaskDataError,
    as_dataset,
    decode_text,
    position_limit,
    report_truncation,
    require_fields,
)
from .metrics import rouge_scores
from .seq2seq_formats import IGNORE, seq2seq_format


def _source_ids(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"]


class Seq2SeqTask(Task):
    name = "seq2seq"
    head = "seq2seq"
    not_packable = (
        "a row pairs a source with its target (encoder-decoder cross-attention, a prefix-LM, UniLM or "
        "GLM mask over the pair), which position ids cannot confine to one record"
    )
    description = "text to text: source -> target"
    record_schema = {"source": "str: the input text", "target": "str: the text to generate"}
    max_target_length = 128

    def preprocess(
        self,
        records: Any,
        tokenizer,
        family: Any,
        max_length: int = 256,
        labels: Sequence | None = None,
        max_target_length: int | None = None,
    ):
        """``max_length`` bounds the source tokens (with the format's specials), ``max_target_length``
        the target tokens (with its end token); longer ones are cut with a warning."""
        dataset = as_dataset(records)
        require_fields(dataset, self.name, ("source", "target"))
        fmt = seq2seq_format(tokenizer, family)
        source_limit = max(max_length - fmt.source_overhead, 0)
        target_limit = max((max_target_length or self.max_target_length) - fmt.target_overhead, 0)
        sources = _source_ids(tokenizer, [s or "" for s in dataset["source"]])
        targets = _source_ids(tokenizer, [t or "" for t in dataset["target"]])
        report_truncation(f"{self.name} sources", [len(s) - source_limit for s in sources], max_length)
        report_truncation(
            f"{self.name} targets",
            [len(t) - target_limit for t in targets],
            target_limit + fmt.target_overhead,
        )
        rows = [fmt.encode(s[:source_limit], t[:target_limit]) for s, t in zip(sources, targets)]
        return type(dataset).from_list(rows)

    def collator(self, tokenizer, family: Any):
        return seq2seq_format(tokenizer, family).collator()

    def compute_metrics(self, tokenizer, labels: Sequence | None = None, language: str = "auto"):
        """For ``Seq2SeqTrainer(predict_with_generate=True)`` on encoder-decoders (generated ids), or
        argmax over logits otherwise; -100 in predictions or labels is read as padding."""
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

        def compute(eval_prediction) -> dict[str, float]:
            predictions = eval_prediction.predictions
            predictions = predictions[0] if isinstance(predictions, tuple) else predictions
            predictions = np.asarray(predictions)
            references = np.asarray(eval_prediction.label_ids)
            if predictions.ndim == 3:  # teacher-forced logits: keep the target positions only
                predictions = predictions.argmax(-1)
                if predictions.shape == references.shape:
                    predictions = np.where(references == IGNORE, pad, predictions)
            predictions = np.where(predictions < 0, pad, predictions)
            references = np.where(references == IGNORE, pad, references)
            texts = [decode_text(tokenizer, row) for row in predictions]
            gold = [decode_text(tokenizer, row) for row in references]
            return rouge_scores(texts, gold, language=language)

        return compute

    def predictor(self, model, tokenizer, **kwargs) -> Seq2SeqPredictor:
        return Seq2SeqPredictor(model, tokenizer, task=self.name, **kwargs)

    def evaluate(
        self, predictor: Seq2SeqPredictor, records: Any, language: str = "auto", **generation_kwargs
    ):
        """ROUGE of the predictor's generations against the records' targets."""
        dataset = as_dataset(records)
        generated = predictor.predict(list(dataset["source"]), **generation_kwargs)
        return rouge_scores(generated, list(dataset["target"]), language=language)


class TitleGenerationTask(Seq2SeqTask):
    name = "title-generation"
    description = "an article or abstract -> its title (FlagAI's title generation)"
    max_target_length = 48


class PoetryGenerationTask(Seq2SeqTask):
    name = "poetry-generation"
    description = "a title and form (FlagAI: '标题：七言绝句') -> a poem"
    record_schema = {"source": "str: the title and the form, e.g. '雪：七言绝句'", "target": "str: the poem"}
    max_target_length = 160


class Seq2SeqPredictor:
    """Generates text with ``model.generate`` (beam search by default) in the family's seq2seq format."""

    def __init__(
        self, model, tokenizer, family: Any = None, max_source_length: int = 256, task: str = "seq2seq"
    ):
        self.model, self.tokenizer, self.task = model, tokenizer, task
        self.format = seq2seq_format(tokenizer, family if family is not None else model)
        self.max_source_length = max_source_length

    @torch.no_grad()
    def predict(
        self,
        inputs: str | Sequence[str],
        batch_size: int = 8,
        num_beams: int = 4,
        max_new_tokens: int = 64,
        **generation_kwargs,
    ) -> list[str]:
        """One generated string per input ("" where the model generates nothing)."""
        for name, value in (("batch_size", batch_size), ("max_new_tokens", max_new_tokens)):
            if not isinstance(value, int) or value < 1:
                raise TaskDataError(f"{name} must be a positive integer, got {value!r}")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        sources = _source_ids(self.tokenizer, [t or "" for t in texts])
        self._check_position_room(max_new_tokens, sources)
        reserve = max_new_tokens if self.format.kind in ("prefix-lm", "unilm") else 0
        max_source_length = position_limit(self.model, self.max_source_length, reserve)
        limit = max(max_source_length - self.format.source_overhead, 0)
        report_truncation(f"{self.task} inputs", [len(s) - limit for s in sources], max_source_length)
        sources = [s[:limit] for s in sources]
        settings = {
            **self.format.generation_kwargs(),
            "num_beams": num_beams,
            "max_new_tokens": max_new_tokens,
        }
        settings.update(generation_kwargs)
        was_training = self.model.training
        self.model.eval()
        results: list[str] = []
        try:
            for start in range(0, len(sources), batch_size):
                batch = self.format.generation_inputs(sources[start : start + batch_size])
                check_model_inputs(self.model.config, batch["input_ids"])
                batch = {k: v.to(self.model.device) for k, v in batch.items()}
                output = self.model.generate(**batch, **settings)
                for ids in self.format.decode_generated(output, batch):
                    results.append(decode_text(self.tokenizer, ids))
        finally:
            self.model.train(was_training)
        return results

    def _check_position_room(self, max_new_tokens: int, sources: Sequence[Sequence[int]]) -> None:
        """Generated tokens take positions of a learned table: more than it holds fail as an IndexError."""
        positions = position_limit(self.model, sys.maxsize)
        if self.format.kind in ("prefix-lm", "unilm"):  # after the source, which is cut down to one token
            room = positions - self.format.source_overhead - 1
            why = (
                f"the prompt of {max(map(len, sources), default=0)} tokens is cut to make room but keeps one"
            )
        elif getattr(self.model.config, "block_position_encoding", False):
            room, why = positions - 1, "GLM numbers the generated tokens in its block position table"
        else:
            return
        if max_new_tokens > room:
            raise TaskDataError(
                f"max_new_tokens={max_new_tokens} does not fit max_position_embeddings="
                f"{self.model.config.max_position_embeddings}: {why}, so at most {room} new tokens fit"
            )

    def generate_ids(self, sources: Sequence[Sequence[int]], **generation_kwargs) -> list[list[int]]:
        """Generated target ids for source ids (no text round trip; greedy unless told otherwise)."""
        settings = {**self.format.generation_kwargs(), "max_new_tokens": 32, **generation_kwargs}
        batch = {k: v.to(self.model.device) for k, v in self.format.generation_inputs(sources).items()}
        with torch.no_grad():
            return self.format.decode_generated(self.model.generate(**batch, **settings), batch)
