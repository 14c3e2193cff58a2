"""transformers pipelines run zoo models with the numbers of transformers' own classes.

Each pipeline gets the zoo class loaded from a directory transformers wrote (through the family's
weight map) and, beside it, transformers' class with the same weights and the same tokenizer: the
outputs (scores, labels, spans, vectors, generated text) must agree.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from tiny_models import bpe_tokenizer, wordpiece_tokenizer

import zoo
from tasks import heads

LABELS = ["O", "B-PER", "I-PER", "B-LOC"]
TEXTS = ["john lives in paris .", "the cat sat on the mat"]


def _noisy(model):
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.1)
    return model.eval()


def _bert_config(tokenizer, **extra):
    return transformers.BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id, **extra,
    )  # fmt: skip


def _pair(reference, zoo_class, directory):
    torch.manual_seed(0)
    _noisy(reference).save_pretrained(directory)
    return reference, zoo_class.from_pretrained(directory)


PIPELINES = {
    "fill-mask": lambda d, tok: _pair(
        transformers.BertForMaskedLM(_bert_config(tok)), zoo.BertForMaskedLM, d
    ),
    "feature-extraction": lambda d, tok: _pair(transformers.BertModel(_bert_config(tok)), zoo.BertModel, d),
    "text-classification": lambda d, tok: _pair(
        transformers.BertForSequenceClassification(_bert_config(tok, num_labels=3)),
        heads.BertForSequenceClassification,
        d,
    ),
    "token-classification": lambda d, tok: _pair(
        transformers.BertForTokenClassification(
            _bert_config(
                tok, id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)}
            )
        ),
        heads.BertForTokenClassification,
        d,
    ),
}


def _same(ours, theirs, path="output"):
    """Pipeline outputs equal: floats within 1e-5, everything else exactly."""
    if isinstance(theirs, dict):
        assert ours.keys() == theirs.keys(), path
        for key in theirs:
            _same(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), path
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _same(a, b, f"{path}[{i}]")
    elif isinstance(theirs, float):
        assert ours == pytest.approx(theirs, abs=1e-5), path
    else:
        assert ours == theirs, path


@pytest.mark.parametrize("task", PIPELINES)
def test_encoder_pipelines_match_transformers(task, tmp_path):
    tokenizer = wordpiece_tokenizer()
    reference, model = PIPELINES[task](tmp_path, tokenizer)
    texts = ["john lives in [MASK] .", "the [MASK] sat on the mat"] if task == "fill-mask" else TEXTS
    options = {"aggregation_strategy": "simple"} if task == "token-classification" else {}
    expected = transformers.pipeline(task, model=reference, tokenizer=tokenizer, device="cpu")(
        texts, **options
    )
    actual = transformers.pipeline(task, model=model, tokenizer=tokenizer, device="cpu")(texts, **options)
    _same(actual, expected)
    if task == "token-classification":
        assert all(entity["word"] for row in actual for entity in row)  # spans carry real words


@pytest.mark.parametrize(
    ("reference_class", "config"),
    [
        (transformers.GPT2LMHeadModel, dict(n_embd=32, n_layer=2, n_head=4, n_positions=64)),
        (
            transformers.LlamaForCausalLM,
            dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=64),
        ),
    ],
)  # fmt: skip
def test_text_generation_pipeline_matches_transformers(reference_class, config, tmp_path):
    tokenizer = bpe_tokenizer()
    tokenizer.pad_token = tokenizer.eos_token
    config_class = reference_class.config_class
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    reference, model = _pair(
        reference_class(config_class(vocab_size=len(tokenizer), **config, **ids)),
        zoo.GPT2ForCausalLM if reference_class is transformers.GPT2LMHeadModel else zoo.LlamaForCausalLM,
        tmp_path,
    )
    settings = dict(max_new_tokens=8, do_sample=False)
    for options in ({}, {"num_beams": 2}):
        expected = transformers.pipeline("text-generation", model=reference, tokenizer=tokenizer)(
            TEXTS, **settings, **options
        )
        actual = transformers.pipeline("text-generation", model=model, tokenizer=tokenizer)(
            TEXTS, **settings, **options
        )
        assert actual == expected
        assert all(row[0]["generated_text"] != text for row, text in zip(actual, TEXTS))  # it generated
