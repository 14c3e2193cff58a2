"""lm-eval's ``HFLM`` runs zoo models as it runs transformers' classes: same backend, same numbers."""

from __future__ import annotations

import logging

import pytest
import test_drift_guard
from test_drift_guard import CASES
from tiny_models import bpe_tokenizer

lm_eval_models = pytest.importorskip(
    "lm_eval.models.huggingface", reason='pip install -c constraints.txt -e ".[dev]"'
)
from lm_eval.api.instance import Instance  # noqa: E402

REQUESTS = [("the cat", " sat on the mat"), ("john lives", " in paris")]


@pytest.mark.parametrize(("name", "backend"), [("LlamaForCausalLM", "causal"), ("GPT2ForCausalLM", "causal"), ("T5ForConditionalGeneration", "seq2seq")])  # fmt: skip
def test_hflm_detects_the_backend_and_scores_as_transformers(name, backend, tmp_path, monkeypatch, caplog):
    tokenizer = bpe_tokenizer()
    monkeypatch.setattr(test_drift_guard, "VOCAB", len(tokenizer))  # the models read it when built
    case = CASES[name](tmp_path)
    results = {}
    for who, model in (("zoo", case.model), ("transformers", case.reference)):
        with caplog.at_level(logging.WARNING):
            lm = lm_eval_models.HFLM(pretrained=model, tokenizer=tokenizer, batch_size=2, device="cpu")
        assert lm.backend == backend, who
        scores = lm.loglikelihood(
            [Instance("loglikelihood", {}, request, i) for i, request in enumerate(REQUESTS)]
        )
        generated = lm.generate_until(
            [Instance("generate_until", {}, (context, {"until": ["\n\n"], "max_gen_toks": 6, "do_sample": False}), i)
             for i, (context, _) in enumerate(REQUESTS)]
        )  # fmt: skip
        results[who] = (scores, generated)
    assert "neither marked as CausalLM or Seq2SeqLM" not in caplog.text
    (ours, our_text), (theirs, their_text) = results["zoo"], results["transformers"]
    assert [greedy for _, greedy in ours] == [greedy for _, greedy in theirs]
    assert [score for score, _ in ours] == pytest.approx([score for score, _ in theirs], abs=1e-4)
    assert all(score < 0 for score, _ in ours)
    assert our_text == their_text and any(our_text)
