"""Sequence classification (``classification``) and sentence-pair matching (``semantic-matching``).

Records ``{text, label}`` or ``{text, text_pair, label}``; labels are names (ints are read as their
string, so 0/1 files work with ``labels=["0", "1"]``). Pairs get the tokenizer's token_type_ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import DataCollatorWithPadding

from zoo.inputs import check_model_inputs

from .base import (
    LabelError,
    Task,
    TaskDataError,
    as_dataset,
    ensure_pad_token,
    model_inputs,
    position_limit,
    report_truncation,
    require_fields,
    resolve_family,
)
from .metrics import classification_scores


def _encode(tokenizer, texts, pairs, max_length, **kwargs):
    """Tokenize (pairs cut longest first) and count the tokens truncation removed per row."""
    args = (list(texts),) if pairs is None else (list(texts), list(pairs))
    full = tokenizer(*args, truncation=False)["input_ids"]
    encoding = tokenizer(*args, truncation=True, max_length=max_length, **kwargs)
    return encoding, [len(ids) - max_length for ids in full]


class ClassificationTask(Task):
    name = "classification"
    head = "sequence-classification"
    not_packable = (
        "it pools one vector per row ([CLS], last-token or mean pooling) and classifies it, so records "
        "sharing a row would share one prediction"
    )
    description = "one label per text (or per text pair)"
    record_schema = {
        "text": "str",
        "text_pair": "str, optional: the second sentence of a pair",
        "label": "str or int: the class name",
    }
    pair = False

    def preprocess(
        self, records: Any, tokenizer, family: Any, max_length: int = 128, labels: Sequence | None = None
    ):
        dataset = as_dataset(records)
        required = ("text", "text_pair", "label") if self.pair else ("text", "label")
        require_fields(dataset, self.name, required)
        ensure_pad_token(tokenizer)
        gold = [str(label) for label in dataset["label"]]
        names = [str(label) for label in labels] if labels is not None else sorted(set(gold))
        label_ids = {name: i for i, name in enumerate(names)}
        offending = set(gold) - set(label_ids)
        if offending:
            raise LabelError(offending, names)
        texts = [t or "" for t in dataset["text"]]
        pairs = [t or "" for t in dataset["text_pair"]] if "text_pair" in dataset.column_names else None
        encoding, cut = _encode(tokenizer, texts, pairs, max_length)
        report_truncation(f"{self.name} records", cut, max_length)
        columns = model_inputs({key: encoding[key] for key in encoding}, family)
        columns["labels"] = [label_ids[g] for g in gold]
        return type(dataset).from_dict(columns)

    def collator(self, tokenizer, family: Any):
        ensure_pad_token(tokenizer)
        _, config = resolve_family(family)
        if config is None:
            return DataCollatorWithPadding(tokenizer)
        return CheckedCollator(tokenizer, config)

    def compute_metrics(self, tokenizer=None, labels: Sequence | None = None):
        """Accuracy and macro F1 from logits (argmax) or predicted class ids."""

        def compute(eval_prediction) -> dict[str, float]:
            predictions = eval_prediction.predictions
            predictions = np.asarray(predictions[0] if isinstance(predictions, tuple) else predictions)
            if predictions.ndim == 2:
                predictions = predictions.argmax(-1)
            return classification_scores(predictions.tolist(), np.asarray(eval_prediction.label_ids).tolist())

        return compute

    def predictor(self, model, tokenizer, **kwargs) -> ClassificationPredictor:
        return ClassificationPredictor(model, tokenizer, **kwargs)


class SemanticMatchingTask(ClassificationTask):
    name = "semantic-matching"
    description = "does the pair match (paraphrase, entailment, ...)? one label per (text, text_pair)"
    record_schema = {"text": "str", "text_pair": "str", "label": "str or int: e.g. 0 / 1"}
    pair = True


class CheckedCollator(DataCollatorWithPadding):
    """Pads, then checks each batch against the model's config: token ids and length must fit its
    embeddings and class ids its ``num_labels``, or the batch fails here, not as an ``IndexError`` in the
    forward."""

    def __init__(self, tokenizer, config):
        super().__init__(tokenizer)
        self.config = config

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().__call__(features)
        check_model_inputs(self.config, batch["input_ids"], batch.get("attention_mask"))
        labels = batch.get("labels")
        if labels is not None and labels.dim() == 1 and not labels.is_floating_point():  # class ids
            outside = labels[(labels < 0) | (labels >= self.config.num_labels)]
            if outside.numel():
                raise LabelError(outside.tolist(), range(self.config.num_labels), field="labels")
        return batch


class ClassificationPredictor:
    """``{"label": str, "score": float}`` per input: a string, or a (text, text_pair) tuple.

    Empty strings are classified like any other input (the model sees only the special tokens).
    """

    def __init__(self, model, tokenizer, max_length: int = 128):
        self.model, self.tokenizer = model, tokenizer
        self.max_length = position_limit(model, max_length)
        ensure_pad_token(tokenizer)
        self.id2label = {int(k): str(v) for k, v in model.config.id2label.items()}

    @torch.no_grad()
    def predict(self, inputs: Any, batch_size: int = 8) -> list[dict[str, Any]]:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise TaskDataError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(inputs, (str, tuple)):
            inputs = [inputs]
        inputs = list(inputs)
        paired = [isinstance(item, (tuple, list)) for item in inputs]
        if any(paired) and not all(paired):
            raise ValueError("mix of single texts and (text, text_pair) tuples; pass one kind per call")
        texts = [(item[0] if paired[0] else item) or "" for item in inputs] if inputs else []
        pairs = [item[1] or "" for item in inputs] if inputs and paired[0] else None
        if not texts:
            return []
        _, cut = _encode(self.tokenizer, texts, pairs, self.max_length)
        report_truncation("classification inputs", cut, self.max_length)
        was_training = self.model.training
        self.model.eval()
        results = []
        try:
            for start in range(0, len(texts), batch_size):
                part = pairs[start : start + batch_size] if pairs is not None else None
                encoding, _ = _encode(
                    self.tokenizer, texts[start : start + batch_size], part, self.max_length, padding=True,
                    return_tensors="pt",
                )  # fmt: skip
                check_model_inputs(self.model.config, encoding["input_ids"], encoding["attention_mask"])
                inputs = model_inputs(encoding, self.model)
                logits = self.model(**{k: v.to(self.model.device) for k, v in inputs.items()}).logits
                probabilities = logits.float().softmax(-1)
                scores, best = probabilities.max(-1)
                for score, index in zip(scores.tolist(), best.tolist()):
                    results.append({"label": self.id2label.get(index, str(index)), "score": score})
        finally:
            self.model.train(was_training)
        return results
