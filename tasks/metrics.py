"""Task metrics through the well-kept libraries: ROUGE (rouge_score), entities (seqeval), sklearn.

ROUGE: rouge_score's default tokenizer keeps only ``[a-z0-9]`` and so drops every Chinese
character; Chinese (any CJK) text is scored by characters instead. ``language="auto"`` picks
characters when either side contains a CJK character.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from rouge_score import rouge_scorer, tokenizers
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOBES
from sklearn.metrics import accuracy_score
from sklearn.metrics import f1_score as sklearn_f1

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")


class CharacterTokenizer(tokenizers.Tokenizer):
    """One token per non-space character (ROUGE on Chinese, as the CSL / LCSTS papers report it)."""

    def tokenize(self, text: str) -> list[str]:
        return [c for c in text if not c.isspace()]


class WhitespaceTokenizer(tokenizers.Tokenizer):
    """Lower-cased whitespace tokens, punctuation kept (for text already tokenised by spaces)."""

    def tokenize(self, text: str) -> list[str]:
        return text.lower().split()


def is_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def _rouge_tokenizer(language: str, predictions: Sequence[str], references: Sequence[str]):
    if language == "auto":
        language = "zh" if any(is_cjk(t) for t in [*predictions, *references]) else "en"
    if language in ("zh", "ja", "ko", "char", "chars"):
        return CharacterTokenizer()
    if language == "whitespace":
        return WhitespaceTokenizer()
    if language == "en":
        return None  # rouge_score's default: lower case, [a-z0-9] tokens
    raise ValueError(f"language must be 'auto', 'en', 'zh', 'char' or 'whitespace'; got {language!r}")


def rouge_scores(
    predictions: Sequence[str],
    references: Sequence[str],
    language: str = "auto",
    use_stemmer: bool = False,
) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure over the pairs (each 0..1)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    scorer = rouge_scorer.RougeScorer(
        list(ROUGE_TYPES),
        use_stemmer=use_stemmer,
        tokenizer=_rouge_tokenizer(language, predictions, references),
    )
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, reference in zip(predictions, references):
        scores = scorer.score(reference, prediction)  # rouge_score takes (target, prediction)
        for key in ROUGE_TYPES:
            totals[key] += scores[key].fmeasure
    count = max(len(predictions), 1)
    return {key: totals[key] / count for key in ROUGE_TYPES}


def entity_scores(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]], scheme: str = "BIO"
) -> dict[str, float]:
    """Entity-level micro precision / recall / F1 (seqeval).

    ``scheme="BIO"`` is seqeval's default mode, the conlleval rules (an I- tag after O opens an
    entity); ``"BIOES"`` / ``"IOBES"`` uses strict mode with the IOBES scheme.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predicted sequences but {len(references)} references")
    kwargs = {}
    if scheme.upper() in ("BIOES", "IOBES"):
        kwargs = {"mode": "strict", "scheme": IOBES}
    elif scheme.upper() not in ("BIO", "IOB2", "IOB"):
        raise ValueError(f"scheme must be 'BIO' or 'BIOES'; got {scheme!r}")
    refs, preds = [list(r) for r in references], [list(p) for p in predictions]
    return {
        "precision": float(precision_score(refs, preds, zero_division=0, **kwargs)),
        "recall": float(recall_score(refs, preds, zero_division=0, **kwargs)),
        "f1": float(f1_score(refs, preds, zero_division=0, **kwargs)),
    }


def entity_report(predictions, references, scheme: str = "BIO") -> dict:
    """seqeval's per-type report as a dict."""
    kwargs = {"mode": "strict", "scheme": IOBES} if scheme.upper() in ("BIOES", "IOBES") else {}
    return classification_report(
        [list(r) for r in references],
        [list(p) for p in predictions],
        output_dict=True,
        zero_division=0,
        **kwargs,
    )


def classification_scores(predictions: Sequence, references: Sequence) -> dict[str, float]:
    """Accuracy and macro F1 (scikit-learn)."""
    return {
        "accuracy": float(accuracy_score(references, predictions)),
        "macro_f1": float(sklearn_f1(references, predictions, average="macro", zero_division=0)),
    }


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (scipy), as sentence-embedding benchmarks report it."""
    from scipy.stats import spearmanr

    if len(x) < 2:
        return float("nan")
    return float(spearmanr(np.asarray(x), np.asarray(y)).statistic)
