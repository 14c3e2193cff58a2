"""The task layer end to end on tiny models: preprocess -> collator -> loss, training lowers it,
predictors give well-formed results, and every seq2seq format round-trips and overfits one pair."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_models import bpe_tokenizer, fit_full_batch, wordpiece_tokenizer
from torch import nn

import tasks
import zoo
from tasks import LabelError, get_task
from tasks.seq2seq_formats import IGNORE, seq2seq_format
from zoo.errors import UnknownNameError

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def wordpiece():
    return wordpiece_tokenizer()


@pytest.fixture(scope="module")
def bpe():
    return bpe_tokenizer()


def bert_config(tokenizer, **extra):
    return zoo.BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128, hidden_dropout=0.0, attention_dropout=0.0,
        pad_token_id=tokenizer.pad_token_id, **extra,
    )  # fmt: skip


# ---------------------------------------------------------------- heads (real ones once they land)
class StubHead(nn.Module):
    """The head contract over zoo.BertModel, used while tasks.heads does not provide the head."""

    def __init__(self, config, kind):
        super().__init__()
        self.config, self.kind = config, kind
        self.bert = zoo.BertModel(config)
        self.out = nn.Linear(config.hidden_size, config.num_labels) if kind != "embedding" else None

    @property
    def device(self):
        return next(self.parameters()).device

    def _encode(self, input_ids, attention_mask, token_type_ids=None):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, **pair):
        hidden = self._encode(input_ids, attention_mask, token_type_ids).last_hidden_state
        out = type("Output", (), {})()
        out.loss = None
        if self.kind == "embedding":
            mask = attention_mask[..., None].float()
            out.pooler_output = nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
            if labels is not None:
                other = self.forward(pair["pair_input_ids"], pair["pair_attention_mask"]).pooler_output
                out.loss = nn.functional.mse_loss((out.pooler_output * other).sum(-1), labels)
            return out
        out.logits = self.out(hidden[:, 0] if self.kind == "sequence-classification" else hidden)
        if labels is not None:
            out.loss = nn.functional.cross_entropy(
                out.logits.reshape(-1, out.logits.shape[-1]), labels.reshape(-1)
            )
        return out

    def decode(self, logits, mask):  # the CRF contract (argmax in place of Viterbi)
        return [row[m].argmax(-1).tolist() for row, m in zip(logits, mask)]


def make_head(kind, config):
    try:
        from tasks.heads import head_class

        return head_class("bert", kind)(config)
    except (ImportError, AttributeError, KeyError, NotImplementedError):
        return StubHead(config, kind)


# ---------------------------------------------------------------- registry
def test_registry_names_heads_and_errors():
    assert tasks.task_names() == sorted(
        ["title-generation", "poetry-generation", "seq2seq", "lm", "masklm", "ner", "sequence-labeling",
         "ner-crf", "classification", "semantic-matching", "embedding"]
    )  # fmt: skip
    heads = {name: get_task(name).head for name in tasks.task_names()}
    assert heads["title-generation"] == heads["poetry-generation"] == heads["seq2seq"] == "seq2seq"
    assert heads["lm"] == "causal-lm" and heads["masklm"] == "masked-lm" and heads["embedding"] == "embedding"
    assert heads["ner"] == heads["sequence-labeling"] == "sequence-labeling"
    assert heads["ner-crf"] == "sequence-labeling-crf"
    assert heads["classification"] == heads["semantic-matching"] == "sequence-classification"
    assert get_task("NER") is get_task("sequence-labeling")
    with pytest.raises(UnknownNameError, match="did you mean 'ner-crf'"):
        get_task("ner_crf")
    with pytest.raises(ValueError, match="registered already"):
        tasks.register_task("ner", tasks.ClassificationTask())
    custom = tasks.ClassificationTask()
    tasks.register_task("my-sentiment", custom)
    assert get_task("My-Sentiment") is custom
    tasks.base._REGISTRY.pop("my-sentiment")


# ---------------------------------------------------------------- seq2seq formats, exactly
def test_encoder_decoder_format(wordpiece):
    fmt = seq2seq_format(wordpiece, "t5")
    eos = wordpiece.eos_token_id
    assert fmt.encode([10, 11], [12]) == {
        "input_ids": [10, 11, eos],
        "attention_mask": [1, 1, 1],
        "labels": [12, eos],
    }
    inputs = fmt.generation_inputs([[10], [10, 11]])
    assert inputs["input_ids"].tolist() == [[10, eos, 0], [10, 11, eos]]
    assert fmt.decode_generated(torch.tensor([[0, 12, 13, eos, 0]]), inputs) == [[12, 13]]


def test_prefix_lm_format(bpe):
    fmt = seq2seq_format(bpe, "gpt2")
    eos = bpe.eos_token_id
    assert fmt.sep == eos and bpe.pad_token_id == eos
    features = fmt.encode([5, 6], [7, 8])
    assert features["input_ids"] == [5, 6, eos, 7, 8, eos]
    assert features["labels"] == [IGNORE, IGNORE, IGNORE, 7, 8, eos]
    inputs = fmt.generation_inputs([[5], [5, 6]])
    assert inputs["input_ids"].tolist() == [[eos, 5, eos], [5, 6, eos]]  # left padded
    assert inputs["attention_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    assert fmt.decode_generated(torch.tensor([[eos, 5, eos, 7, eos, eos]]), inputs) == [[7]]


def test_unilm_format(wordpiece):
    fmt = seq2seq_format(wordpiece, "bert")
    cls, sep = wordpiece.cls_token_id, wordpiece.sep_token_id
    features = fmt.encode([10, 11], [12])
    assert features["input_ids"] == [cls, 10, 11, sep, 12, sep]
    assert features["token_type_ids"] == [0, 0, 0, 0, 1, 1]
    assert features["labels"] == [IGNORE] * 4 + [12, sep]
    inputs = fmt.generation_inputs([[10], [10, 11]])
    assert inputs["input_ids"].tolist() == [[0, cls, 10, sep], [cls, 10, 11, sep]]
    assert inputs["token_type_ids"].tolist() == [[0] * 4] * 2
    assert fmt.generation_kwargs()["eos_token_id"] == sep


def test_glm_format(wordpiece):
    fmt = seq2seq_format(wordpiece, "glm")
    ids = wordpiece.convert_tokens_to_ids
    cls, gmask, sop, eop = ids("[CLS]"), ids("[gMASK]"), ids("<|startofpiece|>"), ids("<|endofpiece|>")
    features = fmt.encode([10, 11], [12, 13])
    assert features["input_ids"] == [cls, 10, 11, gmask, sop, 12, 13]
    assert features["labels"] == [IGNORE] * 4 + [12, 13, eop]
    assert features["position_ids"] == [[0, 1, 2, 3, 3, 3, 3], [0, 0, 0, 0, 1, 2, 3]]
    assert features["sep"] == 4
    inputs = fmt.generation_inputs([[10]])
    assert inputs["input_ids"].tolist() == [[cls, 10, gmask, sop]]
    assert inputs["position_ids"].tolist() == [[[0, 1, 2, 2], [0, 0, 0, 1]]]
    batch = fmt.collator()([features, fmt.encode([10], [12])])
    assert batch["labels"][1].tolist() == [IGNORE] * 3 + [12, eop, IGNORE, IGNORE]
    assert batch["sep"].tolist() == [4, 3]


# ---------------------------------------------------------------- seq2seq: overfit one pair per kind
def seq2seq_model(family, tokenizer):
    ids = tokenizer.convert_tokens_to_ids
    vocab = len(tokenizer)
    small = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, hidden_dropout=0.0, attention_dropout=0.0
    )
    if family == "t5":
        config = zoo.T5Config(
            vocab_size=vocab, head_dim=8, intermediate_size=64, relative_attention_num_buckets=8,
            relative_attention_max_distance=16, pad_token_id=0, eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=0, **small,
        )  # fmt: skip
        return zoo.T5ForConditionalGeneration(config)
    if family == "gpt2":
        config = zoo.GPT2Config(
            vocab_size=vocab, max_position_embeddings=64, embedding_dropout=0.0, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, **small,
        )  # fmt: skip
        return zoo.GPT2ForCausalLM(config)
    if family == "llama":
        config = zoo.LlamaConfig(vocab_size=vocab, intermediate_size=64, max_position_embeddings=64, **small)
        return zoo.LlamaForCausalLM(config)
    if family == "glm":
        config = zoo.GLMConfig(
            vocab_size=vocab, max_position_embeddings=64, embedding_dropout=0.0, pad_token_id=0,
            gmask_token_id=ids("[gMASK]"), sop_token_id=ids("<|startofpiece|>"), eop_token_id=ids("<|endofpiece|>"),
            **small,
        )  # fmt: skip
        return zoo.GLMForSeq2Seq(config)
    unilm = pytest.importorskip(
        "zoo.models.bert.unilm", reason="the UniLM head (tasks/heads/unilm.py) is not there yet"
    )
    return unilm.BertForSeq2Seq(bert_config(tokenizer))


@pytest.mark.parametrize("family", ["t5", "gpt2", "llama", "bert", "glm"])
def test_seq2seq_overfits_one_pair_and_generates_it(family, wordpiece, bpe):
    torch.manual_seed(0)
    tokenizer = bpe if family in ("gpt2", "llama") else wordpiece
    model = seq2seq_model(family, tokenizer)
    task = get_task("title-generation")
    records = [
        {"source": "the cat sat", "target": "on the mat"},
        {"source": "john lives in paris", "target": "good"},
    ]
    dataset = task.preprocess(records, tokenizer, model)
    # T5's initialisation (scaled by initializer_factor) learns slower at the same rate
    steps, lr = (100, 3e-2) if family == "t5" else (60, 1e-2)
    losses = fit_full_batch(model, task.collator(tokenizer, model), dataset, steps=steps, lr=lr)
    assert losses[-1] < 0.05 < losses[0]
    predictor = task.predictor(model, tokenizer, max_source_length=12)
    records_text = [
        "the cat sat",
        "john lives in paris",
        "",
        "the dog ran in the park and the cat sat on it " * 3,
    ]
    long_sources = sum(
        len(tokenizer(t, add_special_tokens=False)["input_ids"]) > 12 - predictor.format.source_overhead
        for t in records_text
    )
    with pytest.warns(UserWarning, match=rf"truncated {long_sources} of 4 record\(s\) to 12 tokens"):
        generated = predictor.predict(
            records_text,
            batch_size=3, num_beams=2, max_new_tokens=6,
        )  # fmt: skip
    assert generated[:2] == ["on the mat", "good"]
    assert len(generated) == 4 and all(isinstance(text, str) for text in generated)


def test_seq2seq_truncation_warning_and_metrics(wordpiece):
    task = get_task("seq2seq")
    with pytest.warns(
        UserWarning, match=r"sources: truncated 1 of 2 record\(s\) to 4 tokens, cutting 4 token"
    ):
        dataset = task.preprocess(
            [{"source": "a b c d e f g", "target": "x"}, {"source": "a", "target": "x"}],
            wordpiece,
            "t5",
            max_length=4,
        )
    assert len(dataset[0]["input_ids"]) == 4
    compute = task.compute_metrics(wordpiece)
    ids = wordpiece("我爱北京", add_special_tokens=False)["input_ids"]
    gold = wordpiece("我爱上海", add_special_tokens=False)["input_ids"]
    prediction = type(
        "P", (), {"predictions": np.array([[0, *ids]]), "label_ids": np.array([[*gold, IGNORE]])}
    )
    assert compute(prediction)["rouge1"] == pytest.approx(0.5)


# ---------------------------------------------------------------- NER
NER_RECORDS = [
    {"tokens": ["john", "lives", "in", "paris", "."], "tags": ["B-PER", "O", "O", "B-LOC", "O"]},
    {"tokens": ["张", "三", "住", "在", "北", "京"], "tags": ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC"]},
    {"tokens": ["john", "works", "at", "acme"], "tags": ["B-PER", "O", "O", "B-ORG"]},
]
NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


@pytest.mark.parametrize("name", ["ner", "ner-crf"])
def test_ner_end_to_end(name, wordpiece):
    torch.manual_seed(0)
    task = get_task(name)
    records = NER_RECORDS + [{"tokens": ["catsx"], "tags": ["O"]}]  # "catsx" is 3 sub-words
    dataset = task.preprocess(records, wordpiece, "bert", labels=NER_LABELS)
    assert dataset[3]["labels"][1:-1] == [0, IGNORE, IGNORE]  # first sub-word only
    model = make_head(task.head, bert_config(wordpiece, **task.label_config(NER_LABELS)))
    losses = fit_full_batch(model, task.collator(wordpiece, "bert"), dataset, steps=40)
    assert losses[-1] < losses[0] / 4
    predictor = task.predictor(model, wordpiece, max_length=8)
    texts = [
        "  John lives in Paris.",
        "张三住在北京",
        "",
        "the cat sat on the mat and the dog ran in the park",
    ]
    with pytest.warns(UserWarning, match=r"truncated 1 of 3 record\(s\) to 8 tokens"):
        results = predictor.predict(texts, batch_size=2)
    assert results[2] == []
    for text, entities in zip(texts, results):
        for entity in entities:
            assert set(entity) == {"entity", "start", "end", "text", "score"}
            assert text[entity["start"] : entity["end"]] == entity["text"] and 0 <= entity["score"] <= 1
    assert [(e["entity"], e["text"]) for e in results[0]] == [("PER", "John"), ("LOC", "Paris")]
    assert [(e["entity"], e["text"], e["start"]) for e in results[1]] == [
        ("PER", "张三", 0),
        ("LOC", "北京", 4),
    ]
    pre_split = predictor.predict([["john", "works", "at", "acme"]])[0]
    assert [(e["entity"], e["start"], e["end"]) for e in pre_split] == [("PER", 0, 4), ("ORG", 14, 18)]
    logits = np.zeros((1, 4, len(NER_LABELS)))
    logits[0, [1, 2], [1, 0]] = 1  # [CLS] B-PER O [SEP]
    eval_prediction = type("P", (), {"predictions": logits, "label_ids": np.array([[IGNORE, 1, 3, IGNORE]])})
    assert task.compute_metrics(wordpiece, NER_LABELS)(eval_prediction)["precision"] == 1.0


def test_ner_bad_tags_name_them(wordpiece):
    with pytest.raises(LabelError, match=r"'B-MISC'.*valid: 'O', 'B-PER'") as error:
        get_task("ner").preprocess(
            [{"tokens": ["a", "b"], "tags": ["B-MISC", "O"]}], wordpiece, "bert", labels=NER_LABELS
        )  # fmt: skip
    assert isinstance(error.value, ValueError) and isinstance(error.value, zoo.ZooError)


# Characters the WordPiece tokenizer turns into no token at all: BOM, zero-width space / non-joiner /
# joiner, word joiner, soft hyphen, a combining acute accent, variation selector 16, two controls.
ZERO_TOKEN_CHARACTERS = "\ufeff\u200b\u200c\u200d\u2060\u00ad\u0301\ufe0f\x01\x7f"
ZERO_TOKEN_WORDS = ["", " ", "\t", "\ufeff", "\u200b\u200d", "\u00ad"]  # pre-split tokens without a token
NER_WORDS = [
    "john", "lives", "in", "paris", "acme", "the", "cat", "cats", "parking", "catsx", ".", ",", "张", "北",
]  # fmt: skip


class TableTagger(nn.Module):
    """A token classifier that labels token id ``i`` with ``table[i]``: a word's label is a function of
    its first sub-word alone, so it must not change when characters without tokens are added around."""

    def __init__(self, config, table):
        super().__init__()
        self.config = config
        self.register_buffer("table", torch.tensor(table))

    @property
    def device(self):
        return self.table.device

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        logits = nn.functional.one_hot(self.table[input_ids], self.config.num_labels).float()
        return type("Output", (), {"logits": logits})()

    def decode(self, logits, mask):
        return [row[m].argmax(-1).tolist() for row, m in zip(logits, mask)]


def table_predictor(wordpiece, table, use_crf=False):
    config = bert_config(wordpiece, **get_task("ner").label_config(NER_LABELS))
    return tasks.labeling.EntityPredictor(TableTagger(config, table), wordpiece, use_crf=use_crf)


def draw_predictor(data, wordpiece):
    labels = st.integers(0, len(NER_LABELS) - 1)
    table = data.draw(st.lists(labels, min_size=len(wordpiece), max_size=len(wordpiece)))
    return table_predictor(wordpiece, table, use_crf=data.draw(st.booleans()))


def inserted(draw, items, fillers):
    """``items`` with ``fillers`` drawn in at random places; and where each item of the result came
    from in ``items`` (None for a filler)."""
    places = draw(st.lists(st.tuples(st.integers(0, len(items)), st.sampled_from(fillers)), max_size=8))
    result, origin = [], []
    for index in range(len(items) + 1):
        for _, filler in sorted(p for p in places if p[0] == index):
            result.append(filler)
            origin.append(None)
        if index < len(items):
            result.append(items[index])
            origin.append(index)
    return result, origin


def covered(entities, spans, origin):
    """Each entity's type and the items its span covers, by their index before the insertions (the
    inserted ones left out)."""
    result = []
    for entity in entities:
        inside = [k for k, (a, b) in enumerate(spans) if entity["start"] <= a and b <= entity["end"]]
        result.append((entity["entity"], [origin[k] for k in inside if origin[k] is not None]))
    return result


def test_zero_token_characters_yield_no_tokens(wordpiece):
    for text in [*ZERO_TOKEN_CHARACTERS, *ZERO_TOKEN_WORDS]:
        assert wordpiece(text, add_special_tokens=False)["input_ids"] == [], repr(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("john lives in paris .", [("PER", "john"), ("LOC", "paris")]),
        ("\ufeffjohn lives in paris .", [("PER", "john"), ("LOC", "paris")]),
        ("john\u200b lives in \u200bparis .", [("PER", "john\u200b"), ("LOC", "paris")]),
        ("jo\u00adhn lives in pari\u0301s .", [("PER", "jo\u00adhn"), ("LOC", "pari\u0301s")]),
        ("\ufffd john lives in \ue000 paris .", [("PER", "john"), ("LOC", "paris")]),  # words without tokens
        (["john", "", "lives", "\ufeff", "in", " ", "paris", "."], [("PER", "john"), ("LOC", "paris")]),
    ],
)
def test_ner_words_without_tokens_do_not_shift_entities(wordpiece, text, expected):
    table = [0] * len(wordpiece)
    table[wordpiece.convert_tokens_to_ids("john")] = NER_LABELS.index("B-PER")
    table[wordpiece.convert_tokens_to_ids("paris")] = NER_LABELS.index("B-LOC")
    entities = table_predictor(wordpiece, table).predict([text])[0]
    assert [(e["entity"], e["text"]) for e in entities] == expected


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_ner_spans_cover_the_same_words_with_zero_token_characters_in_text(wordpiece, data):
    predictor = draw_predictor(data, wordpiece)
    text = " ".join(data.draw(st.lists(st.sampled_from(NER_WORDS), min_size=1, max_size=10)))
    characters, origin = inserted(data.draw, text, ZERO_TOKEN_CHARACTERS)
    noisy = "".join(characters)
    plain, found = predictor.predict([text, noisy])
    for entity in found:
        assert noisy[entity["start"] : entity["end"]] == entity["text"]
    each_character = [(i, i + 1) for i in range(len(noisy))]
    assert covered(found, each_character, origin) == [
        (e["entity"], list(range(e["start"], e["end"]))) for e in plain
    ]
    assert [e["score"] for e in found] == pytest.approx([e["score"] for e in plain])


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_ner_spans_cover_the_same_words_with_zero_token_words_in_pre_split_input(wordpiece, data):
    predictor = draw_predictor(data, wordpiece)
    words = data.draw(st.lists(st.sampled_from(NER_WORDS), min_size=1, max_size=10))
    noisy, origin = inserted(data.draw, words, ZERO_TOKEN_WORDS)
    inside = st.tuples(st.integers(0, len(noisy) - 1), st.sampled_from(ZERO_TOKEN_CHARACTERS))
    for index, character in data.draw(st.lists(inside, max_size=6)):  # and zero-token characters in words
        noisy[index] = noisy[index][:1] + character + noisy[index][1:]
    plain, found = predictor.predict([words, noisy])
    _, spans = tasks.labeling.join_words(noisy)
    _, plain_spans = tasks.labeling.join_words(words)
    assert covered(found, spans, origin) == covered(plain, plain_spans, range(len(words)))


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_ner_preprocess_words_without_tokens_do_not_shift_labels(wordpiece, data):
    words = data.draw(st.lists(st.sampled_from(NER_WORDS), min_size=1, max_size=10))
    tags = data.draw(st.lists(st.sampled_from(NER_LABELS), min_size=len(words), max_size=len(words)))
    noisy, origin = inserted(data.draw, words, ZERO_TOKEN_WORDS)
    noisy_tags = [tags[k] if k is not None else data.draw(st.sampled_from(NER_LABELS)) for k in origin]
    records = [{"tokens": words, "tags": tags}, {"tokens": noisy, "tags": noisy_tags}]
    plain, found = get_task("ner").preprocess(records, wordpiece, "bert", labels=NER_LABELS)
    assert found["input_ids"] == plain["input_ids"] and found["labels"] == plain["labels"]


# ---------------------------------------------------------------- classification / matching
@pytest.mark.parametrize("name", ["classification", "semantic-matching"])
def test_classification_end_to_end(name, wordpiece):
    torch.manual_seed(0)
    task = get_task(name)
    if name == "classification":
        records = [{"text": "i love this movie", "label": "pos"}, {"text": "i hate it", "label": "neg"}]
        inputs = ["i love it", "", "this film was good " * 20]
    else:
        records = [
            {"text": "the cat sat", "text_pair": "the cat sat", "label": 1},
            {"text": "the cat sat", "text_pair": "john ran", "label": 0},
        ]
        inputs = [("the cat", "the cat"), ("", ""), ("the dog ran " * 20, "a cat")]
    dataset = task.preprocess(records, wordpiece, "bert")
    labels = ["neg", "pos"] if name == "classification" else ["0", "1"]
    assert dataset["labels"] == [1, 0]
    if name == "semantic-matching":
        assert dataset[0]["token_type_ids"] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    model = make_head(task.head, bert_config(wordpiece, **task.label_config(labels)))
    losses = fit_full_batch(model, task.collator(wordpiece, "bert"), dataset, steps=30)
    assert losses[-1] < losses[0] / 4
    with pytest.warns(UserWarning, match=r"truncated 1 of 3 record\(s\) to 16 tokens"):
        results = task.predictor(model, wordpiece, max_length=16).predict(inputs, batch_size=2)
    assert len(results) == 3 and all(r["label"] in labels and 0 < r["score"] <= 1 for r in results)
    logits = np.array([[0.1, 0.9], [0.8, 0.2]])
    scores = task.compute_metrics()(type("P", (), {"predictions": logits, "label_ids": np.array([1, 1])}))
    assert scores["accuracy"] == 0.5


def test_classification_bad_labels(wordpiece):
    with pytest.raises(LabelError, match=r"'maybe'.*valid: 'neg', 'pos'"):
        get_task("classification").preprocess(
            [{"text": "a", "label": "maybe"}, {"text": "b", "label": "pos"}],
            wordpiece,
            "bert",
            labels=["neg", "pos"],
        )


# ---------------------------------------------------------------- embedding
def test_embedding_end_to_end(wordpiece):
    torch.manual_seed(0)
    task = get_task("embedding")
    records = [
        {"text": "the cat sat", "text_pair": "the cat sat on the mat", "score": 0.9},
        {"text": "the cat sat", "text_pair": "john works at acme", "score": 0.0},
    ]
    dataset = task.preprocess(records, wordpiece, "bert")
    batch = task.collator(wordpiece, "bert")([dataset[0], dataset[1]])
    assert batch["pair_input_ids"].shape == (2, 8) and batch["labels"].dtype == torch.float32
    model = make_head("embedding", bert_config(wordpiece))
    losses = fit_full_batch(model, task.collator(wordpiece, "bert"), dataset, steps=20)
    assert losses[-1] < losses[0] / 4
    predictor = task.predictor(model, wordpiece, max_length=8)
    with pytest.warns(UserWarning, match=r"truncated 1 of 3"):
        vectors = predictor.predict(["the cat", "", "the dog ran in the park " * 5], batch_size=2)
    assert vectors.shape == (3, 32) and np.isfinite(vectors).all()
    similarity = predictor.similarity(["the cat sat"] * 2, ["the cat sat on the mat", "john works at acme"])
    assert similarity[0] > similarity[1]


# ---------------------------------------------------------------- language modelling
def test_lm_end_to_end(bpe):
    torch.manual_seed(0)
    task = get_task("lm")
    model = seq2seq_model("gpt2", bpe)
    dataset = task.preprocess(
        [{"text": "the cat sat on the mat"}, {"text": "john lives in paris"}], bpe, "gpt2"
    )
    assert dataset[0]["input_ids"][-1] == bpe.eos_token_id
    losses = fit_full_batch(model, task.collator(bpe, "gpt2"), dataset, steps=40, lr=1e-2)
    assert losses[-1] < 0.1 < losses[0]
    predictor = task.predictor(model, bpe, max_length=4)
    with pytest.warns(UserWarning, match=r"truncated 1 of 3"):
        texts = predictor.predict(["the cat sat", "", "john john john john lives in"], max_new_tokens=4)
    assert texts[0] == "on the mat" and len(texts) == 3 and all(isinstance(t, str) for t in texts)


def test_masklm_end_to_end(wordpiece):
    torch.manual_seed(0)
    task = get_task("masklm")
    model = zoo.BertForMaskedLM(bert_config(wordpiece))
    dataset = task.preprocess([{"text": "the cat sat on the mat"}] * 4, wordpiece, "bert")
    collator = task.collator(wordpiece, "bert", mlm_probability=0.5, seed=0)
    batch = collator([dataset[i] for i in range(4)])
    assert ((batch["labels"] != IGNORE) | (batch["input_ids"] == batch["input_ids"])).all()
    assert (batch["labels"] != IGNORE).any()
    losses = fit_full_batch(model, collator, dataset, steps=30, lr=1e-2)
    assert losses[-1] < losses[0]
    filled = task.predictor(model, wordpiece).predict(["the cat [MASK] on the mat", "", "no mask"], top_k=3)
    assert filled[1] == [] and filled[2] == [] and len(filled[0]) == 1 and len(filled[0][0]) == 3


# ---------------------------------------------------------------- real data files
@pytest.mark.skipif(not DATA.is_dir(), reason="shared/data is not beside the repository")
def test_shared_data_sets_load_in_their_task_schema():
    from tasks.data import SHARED, load_shared

    for name, (task_name, _) in SHARED.items():
        dataset = load_shared(name)
        fields = set(get_task(task_name).record_schema) - {"text_pair"} if task_name != "lm" else {"text"}
        assert fields <= set(dataset.column_names), name
        assert len(dataset) >= 5
    weibo = load_shared("weibo-ner")
    assert all(len(t) == len(g) for t, g in zip(weibo["tokens"][:50], weibo["tags"][:50]))
    assert load_shared("pawsx")[0]["label"] in (0, 1)


def test_conll_reader_and_errors(tmp_path):
    from tasks.data import read_conll, read_line_pairs

    path = tmp_path / "x.conll"
    path.write_text("John B-PER\nlives O\n\n北\tB-LOC\n京\tI-LOC\n\n", encoding="utf-8")
    assert read_conll(path).to_list() == [
        {"tokens": ["John", "lives"], "tags": ["B-PER", "O"]},
        {"tokens": ["北", "京"], "tags": ["B-LOC", "I-LOC"]},
    ]
    (tmp_path / "a.src").write_text("a\nb\n")
    (tmp_path / "a.tgt").write_text("c\n")
    with pytest.raises(tasks.TaskDataError, match="2 lines"):
        read_line_pairs(tmp_path / "a.src", tmp_path / "a.tgt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert get_task("ner").preprocess(read_conll(path), wordpiece_tokenizer(), "bert").num_rows == 2
