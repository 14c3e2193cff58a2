"""Language modelling: ``lm`` (causal, continuation) and ``masklm`` (masked, filling ``[MASK]``).

Records ``{text}``. ``lm`` appends the end-of-text token to each record; the collator is
transformers' ``DataCollatorForLanguageModeling`` (``mlm=False`` / ``mlm=True``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import DataCollatorForLanguageModeling

from zoo.inputs import check_model_inputs

from .base import (
    Task,
    TaskDataError,
    as_dataset,
    decode_text,
    ensure_pad_token,
    position_limit,
    report_truncation,
    require_fields,
)

IGNORE = -100


def _tokenize(tokenizer, texts: Sequence[str], max_length: int, what: str, add_eos: bool = False):
    ids = tokenizer([t or "" for t in texts])["input_ids"] if texts else []
    if add_eos and tokenizer.eos_token_id is not None:
        ids = [row + [tokenizer.eos_token_id] for row in ids]
    report_truncation(what, [len(row) - max_length for row in ids], max_length)
    return [row[:max_length] for row in ids]


class CausalLMTask(Task):
    name = "lm"
    head = "causal-lm"
    description = "left-to-right language modelling; the predictor continues a prompt"
    record_schema = {"text": "str"}
    mlm = False
    not_packable = ""  # with label -100 on each record's first token (masklm: no shift, nothing to mask)

    def preprocess(
        self, records: Any, tokenizer, family: Any, max_length: int = 256, labels: Sequence | None = None
    ):
        dataset = as_dataset(records)
        require_fields(dataset, self.name, ("text",))
        ids = _tokenize(tokenizer, dataset["text"], max_length, f"{self.name} records", add_eos=not self.mlm)
        return type(dataset).from_dict({"input_ids": ids, "attention_mask": [[1] * len(row) for row in ids]})

    def collator(self, tokenizer, family: Any, mlm_probability: float = 0.15, seed: int | None = None):
        ensure_pad_token(tokenizer)
        if self.mlm and tokenizer.mask_token_id is None:
            raise TaskDataError("masked LM needs a tokenizer with a mask token")
        return DataCollatorForLanguageModeling(
            tokenizer, mlm=self.mlm, mlm_probability=mlm_probability, seed=seed
        )  # fmt: skip

    def compute_metrics(self, tokenizer=None, labels: Sequence | None = None):
        """Perplexity and token accuracy over the label positions (next-token shift for ``lm``)."""

        def compute(eval_prediction) -> dict[str, float]:
            logits = eval_prediction.predictions
            logits = np.asarray(logits[0] if isinstance(logits, tuple) else logits, dtype=np.float64)
            gold = np.asarray(eval_prediction.label_ids)
            if not self.mlm:
                logits, gold = logits[:, :-1], gold[:, 1:]
            keep = gold != IGNORE
            logits, gold = logits[keep], gold[keep]
            if gold.size == 0:
                return {"perplexity": float("nan"), "token_accuracy": float("nan")}
            shifted = logits - logits.max(-1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
            loss = -log_probs[np.arange(gold.size), gold].mean()
            return {
                "perplexity": float(np.exp(loss)),
                "token_accuracy": float((logits.argmax(-1) == gold).mean()),
            }

        return compute

    def predictor(self, model, tokenizer, **kwargs) -> ContinuationPredictor:
        return ContinuationPredictor(model, tokenizer, **kwargs)


class MaskedLMTask(CausalLMTask):
    name = "masklm"
    head = "masked-lm"
    description = "masked language modelling; the predictor fills [MASK] tokens"
    mlm = True

    def predictor(self, model, tokenizer, **kwargs) -> MaskFillPredictor:
        return MaskFillPredictor(model, tokenizer, **kwargs)


class ContinuationPredictor:
    """The generated continuation (text after the prompt) per prompt; an empty prompt starts from bos/eos."""

    def __init__(self, model, tokenizer, max_length: int = 256):
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length
        ensure_pad_token(tokenizer)

    @torch.no_grad()
    def predict(
        self,
        inputs: str | Sequence[str],
        batch_size: int = 8,
        max_new_tokens: int = 32,
        num_beams: int = 1,
        **kwargs,
    ) -> list[str]:
        for name, value in (("batch_size", batch_size), ("max_new_tokens", max_new_tokens)):
            if not isinstance(value, int) or value < 1:
                raise TaskDataError(f"{name} must be a positive integer, got {value!r}")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        rows = self.tokenizer([t or "" for t in texts])["input_ids"] if texts else []
        room = position_limit(self.model, sys.maxsize) - 1
        if max_new_tokens > room:
            raise TaskDataError(
                f"max_new_tokens={max_new_tokens} does not fit max_position_embeddings="
                f"{self.model.config.max_position_embeddings}: the prompt of {max(map(len, rows), default=0)} "
                f"tokens is cut to make room but keeps one, so at most {room} new tokens fit"
            )
        max_length = position_limit(self.model, self.max_length, reserve=max_new_tokens)
        report_truncation("lm prompts (kept their ends)", [len(r) - max_length for r in rows], max_length)
        rows = [row[-max_length:] for row in rows]
        start_id = (
            self.tokenizer.bos_token_id
            if self.tokenizer.bos_token_id is not None
            else self.tokenizer.eos_token_id
        )
        rows = [row or [start_id] for row in rows]
        pad = self.tokenizer.pad_token_id
        settings = {"max_new_tokens": max_new_tokens, "num_beams": num_beams, "pad_token_id": pad}
        settings.update({"eos_token_id": self.tokenizer.eos_token_id, "do_sample": False, **kwargs})
        was_training, results = self.model.training, []
        self.model.eval()
        try:
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                length = max(map(len, chunk))
                input_ids = torch.tensor(
                    [[pad] * (length - len(r)) + r for r in chunk], device=self.model.device
                )
                mask = torch.tensor(
                    [[0] * (length - len(r)) + [1] * len(r) for r in chunk], device=self.model.device
                )
                check_model_inputs(self.model.config, input_ids, mask)
                output = self.model.generate(input_ids=input_ids, attention_mask=mask, **settings)
                eos = self.tokenizer.eos_token_id
                for new in output[:, length:].tolist():
                    results.append(decode_text(self.tokenizer, new[: new.index(eos)] if eos in new else new))
        finally:
            self.model.train(was_training)
        return results


class MaskFillPredictor:
    """Per text, one list per mask token of ``top_k`` candidates ``{"token": str, "score": float}``;
    a text without a mask token (or an empty one) gives ``[]``."""

    def __init__(self, model, tokenizer, max_length: int = 256):
        self.model, self.tokenizer = model, tokenizer
        self.max_length = position_limit(model, max_length)
        if tokenizer.mask_token_id is None:
            raise TaskDataError("mask filling needs a tokenizer with a mask token")

    @torch.no_grad()
    def predict(
        self, inputs: str | Sequence[str], batch_size: int = 8, top_k: int = 5
    ) -> list[list[list[dict]]]:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise TaskDataError(f"batch_size must be a positive integer, got {batch_size!r}")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        full = self.tokenizer([t or "" for t in texts])["input_ids"] if texts else []
        report_truncation("masklm inputs", [len(r) - self.max_length for r in full], self.max_length)
        was_training, results = self.model.training, []
        self.model.eval()
        try:
            for start in range(0, len(texts), batch_size):
                chunk = [t or "" for t in texts[start : start + batch_size]]
                encoding = self.tokenizer(
                    chunk, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
                )
                check_model_inputs(self.model.config, encoding["input_ids"], encoding["attention_mask"])
                logits = self.model(
                    **{k: v.to(self.model.device) for k, v in encoding.items()}
                ).logits.float()
                probabilities = logits.softmax(-1).cpu()
                for row, ids in enumerate(encoding["input_ids"]):
                    masks = (ids == self.tokenizer.mask_token_id).nonzero().flatten().tolist()
                    filled = []
                    for position in masks:
                        scores, tokens = probabilities[row, position].topk(
                            min(top_k, probabilities.shape[-1])
                        )
                        filled.append(
                            [
                                {"token": self.tokenizer.convert_ids_to_tokens(t), "score": s}
                                for s, t in zip(scores.tolist(), tokens.tolist())
                            ]
                        )
                    results.append(filled)
        finally:
            self.model.train(was_training)
        return results
