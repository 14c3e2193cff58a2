"""Padding-free packing (``tasks.packing``): a packed batch gives the padded batch's numbers.

For a tiny BERT (and RoBERTa, whose positions count from ``pad_token_id + 1``) token classifier and
tiny Llama / GPT-2 causal LMs, in fp32, with sdpa and eager attention: the loss per token of the
packed batch equals the padded batch's (1e-6 relative), each record's logits in its packed row equal
the record run alone (1e-5), and the gradients are equal. Plus: position ids restart per record, the
typed refusals where packing would not be exact, and a property test of the packer itself.
"""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_models import WORDS, bpe_tokenizer, wordpiece_tokenizer

import zoo
from tasks import get_task
from tasks.heads import head_class
from tasks.packing import IGNORE, PackedCollator, check_packable, pack_rows, packing_collator
from zoo.errors import PackingError, ZooError

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
WORD_COUNTS = (9, 3, 12, 1, 6, 7, 2, 10)  # records of 3 to ~20 tokens; packed into rows of 32
MAX_LENGTH = 32
LOSS_RTOL = 1e-6
LOGITS_ATOL = 1e-5
GRAD_ATOL = 1e-6
ATTENTION = ("sdpa", "eager")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# -- data and models --------------------------------------------------------------------------------
def ner_records(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [
        {"tokens": [rng.choice(WORDS) for _ in range(n)], "tags": [rng.choice(TAGS) for _ in range(n)]}
        for n in WORD_COUNTS
    ]


def lm_records(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [{"text": " ".join(rng.choice(WORDS) for _ in range(n))} for n in WORD_COUNTS]


def encoder_classifier(family: str, tokenizer, attention: str):
    config = zoo.get_family(family).config_class(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
        hidden_dropout=0.0, attention_dropout=0.0, num_labels=len(TAGS),
    )  # fmt: skip
    config._attn_implementation = attention
    torch.manual_seed(0)
    return head_class(family, "sequence-labeling")(config).eval()


def decoder_lm(family: str, tokenizer, attention: str):
    sizes = dict(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=128, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    if family == "llama":
        config = zoo.LlamaConfig(intermediate_size=64, num_key_value_heads=2, **sizes)
    else:
        config = zoo.GPT2Config(embedding_dropout=0.0, hidden_dropout=0.0, attention_dropout=0.0, **sizes)
    config._attn_implementation = attention
    torch.manual_seed(0)
    return head_class(family, "causal-lm")(config).eval()


def features(dataset) -> list[dict]:
    return [dataset[i] for i in range(len(dataset))]


def gradients(model, batch) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def record_spans(position_ids: torch.Tensor, offset: int) -> list[tuple[int, int, int]]:
    """(row, start, end) of every record of a packed batch, from where the positions restart."""
    spans = []
    for row, positions in enumerate(position_ids.tolist()):
        starts = [i for i, p in enumerate(positions) if p == offset] + [len(positions)]
        spans += [(row, a, b) for a, b in zip(starts, starts[1:])]
    return spans


def assert_packed_equals_padded(model, padded, packed, records, offset: int, shift: bool):
    """Loss per token, per-record logits and gradients of ``packed`` against ``padded`` / each record alone."""
    loss_padded, grads_padded = gradients(model, padded)
    loss_packed, grads_packed = gradients(model, packed)
    assert abs(loss_packed - loss_padded) <= LOSS_RTOL * abs(loss_padded), (loss_packed, loss_padded)
    assert grads_packed.keys() == grads_padded.keys()
    worst = max((grads_packed[n] - grads_padded[n]).abs().max().item() for n in grads_padded)
    assert worst <= GRAD_ATOL, f"gradients differ by {worst:.2e}"
    # the labelled tokens are the same: as many, the same label values
    labels_padded = padded["labels"][:, 1:] if shift else padded["labels"]
    labels_packed = packed["labels"][:, 1:] if shift else packed["labels"]
    assert sorted(labels_packed[labels_packed != IGNORE].tolist()) == sorted(
        labels_padded[labels_padded != IGNORE].tolist()
    )
    with torch.no_grad():
        logits = model(**packed).logits
        lengths = {len(r["input_ids"]): r for r in records}  # unique lengths checked below
        spans = [s for s in record_spans(packed["position_ids"], offset) if s[2] - s[1] in lengths]
        checked = 0
        for row, start, end in spans:
            ids = packed["input_ids"][row, start:end]
            record = next((r for r in records if r["input_ids"] == ids.tolist()), None)
            if record is None:  # the row's padding tail
                continue
            alone = model(**{k: torch.tensor([v]) for k, v in record.items() if k != "labels"}).logits[0]
            difference = (logits[row, start:end] - alone).abs().max().item()
            assert difference <= LOGITS_ATOL, f"record of {end - start} tokens differs by {difference:.2e}"
            checked += 1
        assert checked == len(records)


# -- numbers: packed == padded ---------------------------------------------------------------------
@pytest.mark.parametrize("attention", ATTENTION)
@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_token_classification_packed_equals_padded(family, attention):
    tokenizer = wordpiece_tokenizer()
    model = encoder_classifier(family, tokenizer, attention)
    task = get_task("ner")
    dataset = task.preprocess(ner_records(), tokenizer, model, max_length=MAX_LENGTH, labels=TAGS)
    records = features(dataset)
    padded = task.collator(tokenizer, model)(records)
    packed = packing_collator(task, tokenizer, model, MAX_LENGTH)(records)
    offset = tokenizer.pad_token_id + 1 if family == "roberta" else 0
    assert "attention_mask" not in packed
    assert packed["input_ids"].shape[0] < len(records) and packed["input_ids"].shape[1] <= MAX_LENGTH
    assert packed["position_ids"][:, 0].eq(offset).all()
    real = packed["input_ids"].ne(tokenizer.pad_token_id)
    assert real.sum() == padded["attention_mask"].sum()  # every token once, no padding inside a row
    assert_packed_equals_padded(model, padded, packed, records, offset, shift=False)


@pytest.mark.parametrize("attention", ATTENTION)
@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_causal_lm_packed_equals_padded(family, attention):
    tokenizer = bpe_tokenizer()
    task = get_task("lm")
    collator = task.collator(tokenizer, family)  # sets the pad token (eos) first
    model = decoder_lm(family, tokenizer, attention)
    records = features(task.preprocess(lm_records(), tokenizer, model, max_length=MAX_LENGTH))
    padded = collator(records)
    packed = packing_collator(task, tokenizer, model, MAX_LENGTH)(records)
    # the first token of every record is not predicted from the previous record
    starts = packed["position_ids"].eq(0) & packed["input_ids"].ne(tokenizer.pad_token_id)
    assert packed["labels"][starts].eq(IGNORE).all()
    assert_packed_equals_padded(model, padded, packed, records, 0, shift=True)


def test_causal_lm_packing_same_for_left_padding():
    """Tokens are taken where the padded batch's attention mask is 1: left padding packs the same."""
    tokenizer = bpe_tokenizer()
    task = get_task("lm")
    task.collator(tokenizer, "llama")
    records = features(task.preprocess(lm_records(1), tokenizer, "llama", max_length=MAX_LENGTH))
    right = packing_collator(task, tokenizer, "llama", MAX_LENGTH)(records)
    tokenizer.padding_side = "left"
    try:
        left = packing_collator(task, tokenizer, "llama", MAX_LENGTH)(records)
    finally:
        tokenizer.padding_side = "right"
    assert right.keys() == left.keys() and right["use_cache"] is False  # eval-mode decoders: no cache
    for key in right.keys() - {"use_cache"}:
        assert torch.equal(right[key], left[key]), key


def test_masked_lm_packed_equals_padded():
    """masklm packs too: the inner collator draws the masks, so packed and padded mask the same tokens."""
    tokenizer = wordpiece_tokenizer()
    config = zoo.BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
        hidden_dropout=0.0, attention_dropout=0.0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = zoo.BertForMaskedLM(config).eval()
    task = get_task("masklm")
    records = features(task.preprocess(lm_records(2), tokenizer, model, max_length=MAX_LENGTH))
    padded = task.collator(tokenizer, model, mlm_probability=0.3, seed=7)(records)
    packed = packing_collator(task, tokenizer, model, MAX_LENGTH, mlm_probability=0.3, seed=7)(records)
    with torch.no_grad():
        loss_padded, loss_packed = model(**padded).loss.item(), model(**packed).loss.item()
    assert packed["labels"].ne(IGNORE).sum() == padded["labels"].ne(IGNORE).sum() > 0
    assert abs(loss_packed - loss_padded) <= LOSS_RTOL * loss_padded


def test_encoder_mask_is_block_diagonal():
    """BertModel, packed: a token's output does not change when another record of its row does."""
    tokenizer = wordpiece_tokenizer()
    model = encoder_classifier("bert", tokenizer, "sdpa")
    ids = torch.tensor([[2, 10, 11, 12, 3, 2, 13, 14, 3]])
    positions = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2, 3]])
    other = ids.clone()
    other[0, 6:8] = torch.tensor([20, 21])
    with torch.no_grad():
        first = model(input_ids=ids, position_ids=positions).logits
        second = model(input_ids=other, position_ids=positions).logits
        unpacked = model(input_ids=ids).logits  # positions 0..8: one record
    assert (first[0, :5] - second[0, :5]).abs().max() == 0
    assert (first[0, :5] - unpacked[0, :5]).abs().max() > 1e-4


# -- refusals ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "task_name, reason",
    [
        ("ner-crf", "CRF"),
        ("classification", "pools one vector per row"),
        ("semantic-matching", "pools one vector per row"),
        ("embedding", "pools one sentence vector"),
        ("title-generation", "pairs a source with its target"),
        ("seq2seq", "pairs a source with its target"),
    ],
)
def test_packing_refused_where_not_exact(task_name, reason):
    with pytest.raises(PackingError, match=reason) as raised:
        packing_collator(get_task(task_name), wordpiece_tokenizer(), "bert", MAX_LENGTH)
    message = str(raised.value)
    assert f"task {task_name!r} cannot be packed exactly" in message and "ner" in message and "lm" in message
    assert isinstance(raised.value, ZooError) and isinstance(raised.value, ValueError)


@pytest.mark.parametrize("family, kind", [("t5", "encoder-decoder"), ("glm", "blank-infilling")])
def test_packing_refused_for_families_without_record_masks(family, kind):
    with pytest.raises(PackingError, match=f"family {family!r} is {kind!r}.*encoder and decoder"):
        check_packable(get_task("lm"), family)


def test_packing_refused_for_flash_attention():
    config = zoo.LlamaConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4)
    config._attn_implementation_internal = "flash_attention_2"
    with pytest.raises(
        PackingError, match="flash_attention_2.*valid for packing: sdpa, eager, flex_attention"
    ):
        check_packable(get_task("lm"), config)


def test_encoder_refuses_packed_batch_under_flash_attention():
    model = encoder_classifier("bert", wordpiece_tokenizer(), "sdpa")
    model.config._attn_implementation_internal = "flash_attention_2"
    with pytest.raises(PackingError, match="block-diagonal mask.*Valid: sdpa, eager"):
        model(input_ids=torch.tensor([[2, 10, 3, 2, 11, 3]]), position_ids=torch.tensor([[0, 1, 2, 0, 1, 2]]))


def test_record_longer_than_rows_refused():
    with pytest.raises(PackingError, match="record 1 has 9 tokens, more than the rows' max_length=8"):
        pack_rows([3, 9], 8)
    with pytest.raises(PackingError, match="positive integer"):
        pack_rows([3], 0)


# -- the packer ----------------------------------------------------------------------------------------
PAD = -1


def _pad_lists(features: list[dict]) -> dict[str, torch.Tensor]:
    width = max(len(f["input_ids"]) for f in features)
    ids = [f["input_ids"] + [PAD] * (width - len(f["input_ids"])) for f in features]
    mask = [[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features]
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}


@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=30),
    max_length=st.integers(1, 64),
    offset=st.sampled_from([0, 2]),
)
def test_packing_keeps_every_token_once_in_order(lengths, max_length, offset):
    lengths = [min(n, max_length) for n in lengths]
    records = [{"input_ids": [1000 * i + j for j in range(n)]} for i, n in enumerate(lengths)]
    batch = PackedCollator(_pad_lists, max_length, PAD, position_offset=offset)(records)
    ids, positions = batch["input_ids"], batch["position_ids"]
    assert ids.shape[1] <= max_length and set(batch) == {"input_ids", "position_ids"}
    seen = []
    for row_ids, row_positions in zip(ids.tolist(), positions.tolist()):
        real = [(t, p) for t, p in zip(row_ids, row_positions) if t != PAD]
        assert row_ids[: len(real)] == [t for t, _ in real]  # padding only at the row's end
        assert all(p == offset for t, p in zip(row_ids, row_positions) if t == PAD)
        row_records = [t // 1000 for t, _ in real]
        assert row_records == sorted(row_records)  # records in order within a row, each contiguous
        for token, position in real:
            assert position == token % 1000 + offset  # positions restart at each record
        seen += [t for t, _ in real]
    assert sorted(seen) == [t for r in records for t in r["input_ids"]]  # every token exactly once


@settings(max_examples=150, deadline=None)
@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=30), max_length=st.integers(40, 64))
def test_first_fit_decreasing_rows(lengths, max_length):
    rows = pack_rows(lengths, max_length)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(row == sorted(row) for row in rows)
    sums = [sum(lengths[i] for i in row) for row in rows]
    assert all(total <= max_length for total in sums)
    # first fit decreasing: records placed longest first (ties in order); none opened a row while an
    # earlier-opened row still had room for it
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    rank = {index: position for position, index in enumerate(order)}
    for r, row in enumerate(rows):
        opener = min(row, key=rank.get)
        for earlier in rows[:r]:
            used = sum(lengths[i] for i in earlier if rank[i] < rank[opener])
            assert used + lengths[opener] > max_length
    # hence no two rows could have been one
    assert all(a + b > max_length for i, a in enumerate(sums) for b in sums[i + 1 :])


def test_first_fit_decreasing_packs_tighter_than_arrival_order():
    # arrival-order first fit needs 3 rows of 10 for these; longest first needs 2
    assert pack_rows([3, 3, 7, 7], 10) == [[0, 2], [1, 3]]


def test_trainer_trains_on_packed_rows_and_evaluates_whole_records(tmp_path):
    """Entity spans (and every per-record metric) need the records apart: a packed row joins them, so
    ``ZooTrainer`` packs training batches only; evaluation and prediction use the task's own collator."""
    from transformers import TrainingArguments

    from trainers import build_trainer

    tokenizer = wordpiece_tokenizer()
    model = encoder_classifier("bert", tokenizer, "sdpa")
    task = get_task("ner")
    args = TrainingArguments(
        str(tmp_path), per_device_train_batch_size=8, per_device_eval_batch_size=8, report_to=[], use_cpu=True
    )
    trainer = build_trainer(
        "ner", model, tokenizer, args, train_records=ner_records(), eval_records=ner_records(1), labels=TAGS,
        data_collator=packing_collator(task, tokenizer, model, MAX_LENGTH),
    )  # fmt: skip
    train_batch = next(iter(trainer.get_train_dataloader()))
    eval_batch = next(iter(trainer.get_eval_dataloader()))
    assert "attention_mask" not in train_batch and train_batch["input_ids"].shape[0] < len(WORD_COUNTS)
    assert "attention_mask" in eval_batch and eval_batch["input_ids"].shape[0] == len(WORD_COUNTS)
    assert isinstance(trainer.data_collator, PackedCollator)  # restored after building the loader
    unpacked = build_trainer(
        "ner", model, tokenizer, args, train_records=ner_records(), eval_records=ner_records(1), labels=TAGS
    )
    assert trainer.evaluate()["eval_loss"] == pytest.approx(unpacked.evaluate()["eval_loss"], rel=1e-6)
