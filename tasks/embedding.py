"""Sentence embeddings (``embedding``): records ``{text, text_pair, score}`` with a float similarity.

Training features hold both sentences: ``input_ids`` / ``attention_mask`` (/ ``token_type_ids``) and
the ``pair_*`` ones; ``labels`` is the similarity the head's cosine is regressed on. The predictor
returns the head's ``pooler_output`` (L2-normalised when the head's config says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import DataCollatorWithPadding

from zoo.inputs import check_model_inputs

from .base import (
    Task,
    TaskDataError,
    as_dataset,
    ensure_pad_token,
    model_inputs,
    position_limit,
    report_truncation,
    require_fields,
)
from .metrics import spearman

PAIR_PREFIX = "pair_"


def _encode(tokenizer, texts: Sequence[str], max_length: int, what: str, **kwargs):
    texts = [t or "" for t in texts]
    full = tokenizer(texts, truncation=False)["input_ids"] if texts else []
    report_truncation(what, [len(ids) - max_length for ids in full], max_length)
    return tokenizer(texts, truncation=True, max_length=max_length, **kwargs)


class EmbeddingTask(Task):
    name = "embedding"
    head = "embedding"
    not_packable = "it pools one sentence vector per row, so records sharing a row would share one embedding"
    description = "sentence vectors, trained by regressing cos(a, b) on a similarity score"
    record_schema = {"text": "str", "text_pair": "str", "score": "float: the pair's similarity (e.g. 0..1)"}

    def preprocess(
        self, records: Any, tokenizer, family: Any, max_length: int = 128, labels: Sequence | None = None
    ):
        dataset = as_dataset(records)
        require_fields(dataset, self.name, ("text", "text_pair", "score"))
        try:
            scores = [float(s) for s in dataset["score"]]
        except (TypeError, ValueError) as error:
            raise TaskDataError(f"embedding scores must be numbers: {error}") from None
        first = _encode(tokenizer, dataset["text"], max_length, "embedding texts")
        second = _encode(tokenizer, dataset["text_pair"], max_length, "embedding text pairs")
        columns = model_inputs({key: first[key] for key in first}, family)
        columns.update({PAIR_PREFIX + key: value for key, value in model_inputs(second, family).items()})
        columns["labels"] = scores
        return type(dataset).from_dict(columns)

    def collator(self, tokenizer, family: Any):
        return PairCollator(tokenizer)

    def compute_metrics(self, tokenizer=None, labels: Sequence | None = None):
        """Spearman correlation of the predicted similarities with the scores. Predictions are either
        the cosines (batch,) or the two embedding matrices ``(a, b)``."""

        def compute(eval_prediction) -> dict[str, float]:
            predictions = eval_prediction.predictions
            if (
                isinstance(predictions, (tuple, list))
                and len(predictions) == 2
                and np.ndim(predictions[0]) == 2
            ):
                a, b = (np.asarray(p, dtype=np.float64) for p in predictions)
                norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
                predictions = (a * b).sum(1) / np.maximum(norms, 1e-12)
            predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
            return {"spearman": spearman(predictions, np.asarray(eval_prediction.label_ids).reshape(-1))}

        return compute

    def predictor(self, model, tokenizer, **kwargs) -> EmbeddingPredictor:
        return EmbeddingPredictor(model, tokenizer, **kwargs)


class PairCollator:
    """Pads the two sentences of each pair separately with ``DataCollatorWithPadding``."""

    def __init__(self, tokenizer):
        ensure_pad_token(tokenizer)
        self.pad = DataCollatorWithPadding(tokenizer)

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        first = [
            {k: v for k, v in f.items() if not k.startswith(PAIR_PREFIX) and k != "labels"} for f in features
        ]
        second = [
            {k[len(PAIR_PREFIX) :]: v for k, v in f.items() if k.startswith(PAIR_PREFIX)} for f in features
        ]
        batch = dict(self.pad(first))
        if second[0]:
            batch.update({PAIR_PREFIX + k: v for k, v in self.pad(second).items()})
        if "labels" in features[0]:
            batch["labels"] = torch.tensor([float(f["labels"]) for f in features])
        return batch


class EmbeddingPredictor:
    """``predict(texts)`` -> numpy array (n, hidden); ``similarity(a, b)`` -> cosines (n,)."""

    def __init__(self, model, tokenizer, max_length: int = 128):
        self.model, self.tokenizer = model, tokenizer
        self.max_length = position_limit(model, max_length)
        ensure_pad_token(tokenizer)

    @torch.no_grad()
    def predict(self, inputs: str | Sequence[str], batch_size: int = 8) -> np.ndarray:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise TaskDataError(f"batch_size must be a positive integer, got {batch_size!r}")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        _encode(self.tokenizer, texts, self.max_length, "embedding inputs")  # warns about truncation
        was_training = self.model.training
        self.model.eval()
        vectors = []
        try:
            for start in range(0, len(texts), batch_size):
                chunk = [t or "" for t in texts[start : start + batch_size]]
                encoding = self.tokenizer(
                    chunk, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
                )
                check_model_inputs(self.model.config, encoding["input_ids"], encoding["attention_mask"])
                inputs = model_inputs(encoding, self.model)
                output = self.model(**{k: v.to(self.model.device) for k, v in inputs.items()})
                vectors.append(output.pooler_output.float().cpu().numpy())
        finally:
            self.model.train(was_training)
        hidden = getattr(self.model.config, "hidden_size", 0)
        return np.concatenate(vectors) if vectors else np.zeros((0, hidden), dtype=np.float32)

    def similarity(self, texts: Sequence[str], others: Sequence[str], batch_size: int = 8) -> np.ndarray:
        a, b = self.predict(texts, batch_size), self.predict(others, batch_size)
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        return (a * b).sum(1) / np.maximum(norms, 1e-12)
