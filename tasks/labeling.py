"""Sequence labeling (``ner`` / ``sequence-labeling``, ``ner-crf``): records ``{tokens, tags}``.

Tags are word level (BIO or BIOES); the first sub-word of a word carries its tag, the other
sub-words -100 (``word_ids()`` of the fast tokenizer). The predictor takes raw strings (split into
words: each CJK character, each run of other word characters, each punctuation mark; combining marks
and invisible format or control characters stay with the character before them) or pre-split token
lists, and returns entity spans with character offsets into the original text. Words are matched to
their sub-words through ``word_ids()``: a word the tokenizer gives no token (a BOM, a zero-width
space, an empty pre-split token) gets no tag, so it neither starts nor ends an entity (as in
transformers' token-classification pipeline), and the other words keep their own tags.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import regex
import torch
from seqeval.metrics.sequence_labeling import get_entities
from transformers import DataCollatorForTokenClassification

from .base import (
    LabelError,
    Task,
    TaskDataError,
    as_dataset,
    model_inputs,
    position_limit,
    report_truncation,
    require_fields,
)
from .metrics import entity_scores

IGNORE = -100
_CJK = "\u3400-\u9fff\uf900-\ufaff"
# Marks, format characters (BOM, zero-width space / joiners, soft hyphen) and controls other than
# whitespace belong to the character before them: tokenizers drop or merge them, so they must not
# split a word or be a word of their own.
_ATTACHED = r"[\p{M}\p{Cf}]|(?!\s)\p{Cc}"
_LETTER = rf"(?![{_CJK}])[\p{{L}}\p{{N}}_]"
_WORD = regex.compile(
    rf"[{_CJK}](?:{_ATTACHED})*"
    rf"|{_LETTER}(?:{_LETTER}|{_ATTACHED})*"
    rf"|[^\s\p{{L}}\p{{N}}_\p{{M}}\p{{Cf}}\p{{Cc}}](?:{_ATTACHED})*"
)


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Words of a raw string and their character spans."""
    matches = list(_WORD.finditer(text))
    return [m.group() for m in matches], [m.span() for m in matches]


def join_words(tokens: Sequence[str], separator: str | None = None) -> tuple[str, list[tuple[int, int]]]:
    """The text of pre-split tokens (joined by ``separator``; default: "" if every token is one CJK
    character, else " ") and each token's character span in it."""
    if separator is None:
        separator = "" if tokens and all(len(t) == 1 and re.match(f"[{_CJK}]", t) for t in tokens) else " "
    spans, position = [], 0
    for token in tokens:
        spans.append((position, position + len(token)))
        position += len(token) + len(separator)
    return separator.join(tokens), spans


def tag_names(records_tags: Sequence[Sequence[str]]) -> list[str]:
    """The tag set of the data: "O" first, then sorted by entity type and B/I/E/S."""
    found = {tag for tags in records_tags for tag in tags}
    found.discard("O")
    return ["O", *sorted(found, key=lambda t: (t[2:], t[:1]))]


def _tokenize_words(tokenizer, words: list[list[str]], max_length: int, **kwargs):
    full = tokenizer(words, is_split_into_words=True, truncation=False)["input_ids"] if words else []
    encoding = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length, **kwargs)
    return encoding, [len(ids) - max_length for ids in full]


def _check_words_and_tags(task: str, all_tokens, all_tags) -> None:
    """One str tag per str token in every record (a tag too many or too few would go unnoticed or fail
    deep in the alignment)."""
    for index, (tokens, tags) in enumerate(zip(all_tokens, all_tags)):
        for field, values in (("tokens", tokens), ("tags", tags)):
            if isinstance(values, str) or not all(isinstance(value, str) for value in values):
                raise TaskDataError(
                    f"task {task!r}: record {index} has {field}={reprlib.repr(values)}; "
                    f"{field} must be a list of str"
                )
        if len(tokens) != len(tags):
            raise TaskDataError(
                f"task {task!r}: record {index} has {len(tokens)} token(s) but {len(tags)} tag(s); "
                "every token needs exactly one tag"
            )


class SequenceLabelingTask(Task):
    name = "ner"
    head = "sequence-labeling"
    not_packable = ""  # one loss term per token, each from its own record's tokens
    description = "named entities / sequence labels, word-level BIO or BIOES tags"
    record_schema = {
        "tokens": "list[str]: words (or characters for Chinese)",
        "tags": "list[str]: one tag per word",
    }
    scheme = "BIO"

    def preprocess(
        self, records: Any, tokenizer, family: Any, max_length: int = 128, labels: Sequence | None = None
    ):
        dataset = as_dataset(records)
        require_fields(dataset, self.name, ("tokens", "tags"))
        all_tags = dataset["tags"]
        _check_words_and_tags(self.name, dataset["tokens"], all_tags)
        labels = [str(label) for label in labels] if labels is not None else tag_names(all_tags)
        label_ids = {label: i for i, label in enumerate(labels)}
        offending = {tag for tags in all_tags for tag in tags if tag not in label_ids}
        if offending:
            raise LabelError(offending, labels, field="tag")
        words = [list(tokens) for tokens in dataset["tokens"]]
        encoding, cut = _tokenize_words(tokenizer, words, max_length)
        report_truncation(f"{self.name} records", cut, max_length)
        rows = []
        for i, tags in enumerate(all_tags):
            word_ids, previous, aligned = encoding.word_ids(i), None, []
            for word in word_ids:
                aligned.append(IGNORE if word is None or word == previous else label_ids[tags[word]])
                previous = word
            row = model_inputs({key: encoding[key][i] for key in encoding}, family)
            row["labels"] = aligned
            rows.append(row)
        return type(dataset).from_list(rows)

    def collator(self, tokenizer, family: Any):
        return DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORE)

    def compute_metrics(self, tokenizer, labels: Sequence | None = None, scheme: str | None = None):
        """seqeval entity P/R/F1 (+ token accuracy) from logits (argmax) or predicted ids."""
        if labels is None:
            raise ValueError("compute_metrics needs the label names (the model's id2label order)")
        names = [str(label) for label in labels]

        def compute(eval_prediction) -> dict[str, float]:
            predictions = eval_prediction.predictions
            predictions = np.asarray(predictions[0] if isinstance(predictions, tuple) else predictions)
            if predictions.ndim == 3:
                predictions = predictions.argmax(-1)
            predicted, gold = [], []
            for row, reference in zip(predictions, np.asarray(eval_prediction.label_ids)):
                keep = reference != IGNORE
                predicted.append([names[i] for i in row[keep]])
                gold.append([names[i] for i in reference[keep]])
            scores = entity_scores(predicted, gold, scheme=scheme or self.scheme)
            total = sum(map(len, gold))
            scores["token_accuracy"] = sum(
                p == g for ps, gs in zip(predicted, gold) for p, g in zip(ps, gs)
            ) / max(total, 1)
            return scores

        return compute

    def predictor(self, model, tokenizer, **kwargs) -> EntityPredictor:
        kwargs.setdefault("use_crf", self.head == "sequence-labeling-crf")
        return EntityPredictor(model, tokenizer, **kwargs)


class CRFSequenceLabelingTask(SequenceLabelingTask):
    name = "ner-crf"
    head = "sequence-labeling-crf"
    not_packable = (
        "the CRF scores tag transitions along the whole row, so one record's last tag would be "
        "chained to the next record's first and the row normalised as one sequence"
    )
    description = "sequence labeling with a CRF layer (Viterbi decoding through model.decode)"


class EntityPredictor:
    """Entity spans per text: ``{"entity", "start", "end", "text", "score"}`` (character offsets).

    ``score`` is the mean softmax probability of the chosen tags over the entity's words (with a CRF,
    of the emission scores along the Viterbi path).
    """

    def __init__(
        self,
        model,
        tokenizer,
        labels: Sequence[str] | None = None,
        max_length: int = 128,
        use_crf: bool = False,
        scheme: str = "BIO",
    ):
        self.model, self.tokenizer = model, tokenizer
        self.max_length = position_limit(model, max_length)
        if labels is None:
            id2label = model.config.id2label
            labels = [id2label[i] for i in range(len(id2label))]
        self.labels = [str(label) for label in labels]
        self.use_crf = use_crf
        if use_crf and not hasattr(model, "decode"):
            raise TypeError(f"{type(model).__name__} has no decode(logits, mask): it is not a CRF head")
        self.scheme = scheme

    def _words(self, item, separator):
        if isinstance(item, str):
            words, spans = split_words(item)
            return item, words, spans
        text, spans = join_words(list(item), separator)
        return text, list(item), spans

    @torch.no_grad()
    def predict(
        self, inputs: str | Sequence, batch_size: int = 8, separator: str | None = None
    ) -> list[list[dict[str, Any]]]:
        """``inputs``: a string, a list of strings, or a list of token lists (offsets then index the
        tokens joined by ``separator``, see :func:`join_words`)."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise TaskDataError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(inputs, str):
            inputs = [inputs]
        items = [self._words(item, separator) for item in inputs]
        results: list[list[dict[str, Any]]] = [[] for _ in items]
        todo = [i for i, (_, words, _) in enumerate(items) if words]
        if todo:
            _, cut = _tokenize_words(self.tokenizer, [items[i][1] for i in todo], self.max_length)
            report_truncation("ner inputs", cut, self.max_length)
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(todo), batch_size):
                chunk = todo[start : start + batch_size]
                for i, entities in zip(chunk, self._predict_batch([items[i] for i in chunk])):
                    results[i] = entities
        finally:
            self.model.train(was_training)
        return results

    def _predict_batch(self, items) -> list[list[dict[str, Any]]]:
        encoding, _ = _tokenize_words(
            self.tokenizer,
            [words for _, words, _ in items],
            self.max_length,
            padding=True,
            return_tensors="pt",
        )
        batch = {k: v.to(self.model.device) for k, v in model_inputs(encoding, self.model).items()}
        logits = self.model(**batch).logits.float()
        probabilities = logits.softmax(-1).cpu()
        # Tags are read at each word's first sub-word; tagged[row][k] is the word the k-th tag is of
        # (words without a token, or cut off by truncation, have none).
        first = torch.zeros(logits.shape[:2], dtype=torch.bool)
        tagged: list[list[int]] = []
        for row in range(len(items)):
            previous, words = None, []
            for position, word in enumerate(encoding.word_ids(row)):
                if word is not None and word != previous:
                    first[row, position] = True
                    words.append(word)
                previous = word
            tagged.append(words)
        if self.use_crf:
            paths = self.model.decode(logits, first.to(logits.device))
        else:
            best = probabilities.argmax(-1)
            paths = [best[row][first[row]].tolist() for row in range(len(items))]
        output = []
        for row, (text, _, spans) in enumerate(items):
            positions = first[row].nonzero().flatten().tolist()
            path = list(paths[row])[: len(positions)]
            tags = [self.labels[i] for i in path]
            scores = [probabilities[row, p, t].item() for p, t in zip(positions, path)]
            entities = []
            for kind, first_tag, last_tag in get_entities(tags):
                begin, end = spans[tagged[row][first_tag]][0], spans[tagged[row][last_tag]][1]
                entities.append(
                    {
                        "entity": kind,
                        "start": begin,
                        "end": end,
                        "text": text[begin:end],
                        "score": float(np.mean(scores[first_tag : last_tag + 1])),
                    }
                )
            output.append(entities)
        return output
