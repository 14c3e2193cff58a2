"""UniLM seq2seq head (zoo.models.bert.unilm): mask, loss, cached generation, loading and Auto registration."""

from __future__ import annotations

import pytest
import torch
import transformers
from reference_models import tiny_reference
from transformers import AutoModelForSeq2SeqLM

import zoo
from zoo.models.bert import BertForSeq2Seq, RobertaForSeq2Seq
from zoo.registry import zoo_class_for

VOCAB = 60
FAMILIES = {  # class, config class, (cls, sep, pad)
    "bert": (BertForSeq2Seq, zoo.BertConfig, (2, 3, 0)),
    "roberta": (RobertaForSeq2Seq, zoo.RobertaConfig, (0, 2, 1)),
}


def tiny_model(family: str, seed: int = 0) -> BertForSeq2Seq:
    model_class, config_class, _ = FAMILIES[family]
    torch.manual_seed(seed)
    config = config_class(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        initializer_range=0.2,  # distinct logits: no near-ties for argmax and beams to flip on
    )
    return model_class(config).eval()


def unilm_rows(family: str, pairs, left_pad: bool = False) -> dict[str, torch.Tensor]:
    """``[CLS] source [SEP] target [SEP]`` rows (``[CLS] source [SEP]`` when target is None), padded."""
    cls, sep, pad = FAMILIES[family][2]
    rows, types = [], []
    for source, target in pairs:
        rows.append([cls, *source, sep] + ([*target, sep] if target is not None else []))
        types.append([0] * (len(source) + 2) + ([1] * (len(target) + 1) if target is not None else []))
    length = max(map(len, rows))
    batch = {"input_ids": [], "token_type_ids": [], "attention_mask": []}
    for ids, segments in zip(rows, types):
        fill = length - len(ids)
        parts = [
            ([pad] * fill, ids),
            ([0] * fill, segments),
            ([0] * fill, [1] * len(ids)),
        ]
        for key, (padding, values) in zip(batch, parts):
            batch[key].append(padding + values if left_pad else values + padding)
    return {key: torch.tensor(value) for key, value in batch.items()}


def naive_unilm_mask(token_type_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(batch, 1, L, L) additive mask written out position by position from the UniLM definition."""
    batch, length = token_type_ids.shape
    mask = torch.full((batch, 1, length, length), torch.finfo(torch.float32).min)
    for b in range(batch):
        for i in range(length):
            for j in range(length):
                if not attention_mask[b, j]:
                    continue
                query_is_source = token_type_ids[b, i] == 0
                key_is_source = token_type_ids[b, j] == 0
                if key_is_source if query_is_source else (key_is_source or j <= i):
                    mask[b, 0, i, j] = 0.0
    return mask


SOURCE, TARGET = [11, 12, 13, 14, 15], [21, 22, 23]


@torch.no_grad()
def test_target_positions_see_no_later_token_and_source_sees_only_source():
    model = tiny_model("bert")
    batch = unilm_rows("bert", [(SOURCE, TARGET)])
    logits = model(**batch).logits
    first_target = len(SOURCE) + 2
    length = batch["input_ids"].shape[1]
    for i in range(first_target, length - 1):  # change every token after target position i
        changed = batch["input_ids"].clone()
        changed[0, i + 1 :] = torch.randint(30, VOCAB, (length - i - 1,))
        new = model(**{**batch, "input_ids": changed}).logits
        assert (new[0, : i + 1] - logits[0, : i + 1]).abs().max() == 0
        assert (new[0, i + 1 :] - logits[0, i + 1 :]).abs().max() > 1e-3
    for j in range(1, len(SOURCE) + 1):  # any source token reaches every source position
        changed = batch["input_ids"].clone()
        changed[0, j] = 40
        new = model(**{**batch, "input_ids": changed}).logits
        assert (new[0, :first_target] - logits[0, :first_target]).abs().amax(-1).min() > 1e-3
    changed = batch["input_ids"].clone()
    changed[0, first_target:] = 41  # the whole target: the source cannot see it
    new = model(**{**batch, "input_ids": changed}).logits
    assert (new[0, :first_target] - logits[0, :first_target]).abs().max() == 0


@pytest.mark.parametrize("family", ["bert", "roberta"])
@torch.no_grad()
def test_logits_match_transformers_masked_lm_under_a_naive_unilm_mask(family, tmp_path):
    model = tiny_model(family)
    model.save_reference(tmp_path)
    reference_class = transformers.BertForMaskedLM if family == "bert" else transformers.RobertaForMaskedLM
    reference, info = reference_class.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values()), info
    batch = unilm_rows(family, [(SOURCE, TARGET), ([31, 32], [33]), ([34, 35, 36], [37, 38, 39, 40, 41])])
    mask = naive_unilm_mask(batch["token_type_ids"], batch["attention_mask"])
    offset = model.config.pad_token_id + 1 if family == "roberta" else 0
    positions = torch.arange(batch["input_ids"].shape[1]).expand(3, -1) + offset
    types = batch["token_type_ids"] if family == "bert" else torch.zeros_like(batch["token_type_ids"])
    expected = reference.eval()(
        input_ids=batch["input_ids"], attention_mask=mask, token_type_ids=types, position_ids=positions
    ).logits
    real = batch["attention_mask"].bool()
    for attn_implementation in ("sdpa", "eager"):
        model.set_attn_implementation(attn_implementation)
        logits = model(**batch).logits
        assert (logits[real] - expected[real]).abs().max() <= 1e-5


@torch.no_grad()
def test_loss_is_the_shifted_causal_loss_and_exact_under_gradient_accumulation():
    model = tiny_model("bert")
    batch = unilm_rows("bert", [(SOURCE, TARGET), ([31, 32], [33])])
    labels = batch["input_ids"].masked_fill(
        (batch["token_type_ids"] == 0) | (batch["attention_mask"] == 0), -100
    )
    output = model(**batch, labels=labels)
    expected = torch.nn.functional.cross_entropy(
        output.logits[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1), ignore_index=-100
    )
    assert abs(output.loss.item() - expected.item()) <= 1e-6
    n_items = int((labels[:, 1:] != -100).sum())
    assert n_items == len(TARGET) + 1 + 2
    # Trainer's gradient accumulation: per-micro-batch losses over the batch's item count sum to the full loss.
    micro = [
        model(
            **{k: v[row : row + 1] for k, v in batch.items()},
            labels=labels[row : row + 1],
            num_items_in_batch=n_items,
        )
        for row in range(2)
    ]
    assert abs(sum(m.loss.item() for m in micro) - output.loss.item()) <= 1e-6
    assert model(**batch, output_hidden_states=True).hidden_states is not None


def reference_greedy(model, prompt: list[int], steps: int) -> list[int]:
    """Recompute the whole sequence every step (no cache) and take the argmax."""
    ids, types = list(prompt), [0] * len(prompt)
    for _ in range(steps):
        logits = model(input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([types])).logits
        ids.append(int(logits[0, -1].argmax()))
        types.append(1)
    return ids[len(prompt) :]


def generate_new(model, batch, **kwargs) -> list[list[int]]:
    pad = FAMILIES["roberta" if isinstance(model, RobertaForSeq2Seq) else "bert"][2][2]
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    output = model.generate(**inputs, do_sample=False, eos_token_id=None, pad_token_id=pad, **kwargs)
    return output[:, batch["input_ids"].shape[1] :].tolist()


@pytest.mark.parametrize("family", ["bert", "roberta"])
@torch.no_grad()
def test_greedy_generation_matches_a_full_recompute_decode_with_either_cache_and_without(family):
    model = tiny_model(family)
    batch = unilm_rows(family, [(SOURCE, None)])
    expected = reference_greedy(model, batch["input_ids"][0].tolist(), steps=8)
    assert generate_new(model, batch, max_new_tokens=8) == [expected]
    assert generate_new(model, batch, max_new_tokens=8, cache_implementation="static") == [expected]
    assert generate_new(model, batch, max_new_tokens=8, use_cache=False) == [expected]
    assert len(set(expected)) > 1  # a decode that repeats one token would prove little


@pytest.mark.parametrize("family", ["bert", "roberta"])
@torch.no_grad()
def test_left_padded_batches_generate_as_rows_alone_greedy_and_beam(family):
    model = tiny_model(family)
    pairs = [(SOURCE, None), ([31, 32], None), ([44], None)]
    batch = unilm_rows(family, pairs, left_pad=True)
    assert batch["attention_mask"][2].tolist()[:4] == [0, 0, 0, 0]
    for kwargs in ({}, {"num_beams": 3}):
        together = generate_new(model, batch, max_new_tokens=6, **kwargs)
        alone = [
            generate_new(model, unilm_rows(family, [pair]), max_new_tokens=6, **kwargs)[0] for pair in pairs
        ]
        assert together == alone
        assert generate_new(model, batch, max_new_tokens=6, use_cache=False, **kwargs) == together
        static = generate_new(model, batch, max_new_tokens=6, cache_implementation="static", **kwargs)
        assert static == together


@torch.no_grad()
def test_beam_search_is_identical_with_and_without_cache():
    model = tiny_model("bert", seed=1)
    batch = unilm_rows("bert", [(SOURCE, None)])
    kwargs = dict(
        max_new_tokens=7,
        num_beams=3,
        num_return_sequences=3,
        output_scores=True,
        return_dict_in_generate=True,
    )
    cached = model.generate(**batch, do_sample=False, eos_token_id=None, pad_token_id=0, **kwargs)
    full = model.generate(
        **batch, do_sample=False, eos_token_id=None, pad_token_id=0, use_cache=False, **kwargs
    )
    assert torch.equal(cached.sequences, full.sequences)
    assert (cached.sequences_scores - full.sequences_scores).abs().max() <= 1e-5
    assert len({tuple(row) for row in cached.sequences.tolist()}) == 3
    # Each returned beam's score is its summed log-probability under a full recompute, over its length.
    prompt_length = batch["input_ids"].shape[1]
    for sequence, score in zip(cached.sequences, cached.sequences_scores):
        types = torch.tensor([[0] * prompt_length + [1] * (len(sequence) - prompt_length)])
        log_probs = model(input_ids=sequence[None], token_type_ids=types).logits.log_softmax(-1)
        chosen = log_probs[0, prompt_length - 1 : -1].gather(-1, sequence[prompt_length:, None])
        assert abs(chosen.sum().item() / 7 - score.item()) <= 1e-4


def test_source_tokens_after_a_cache_are_rejected():
    model = tiny_model("bert")
    batch = unilm_rows("bert", [(SOURCE, None)])
    with torch.no_grad():
        cache = model(**batch, use_cache=True).cache
        assert cache.get_seq_length() == batch["input_ids"].shape[1]
        with pytest.raises(ValueError, match="after cached positions"):
            model(input_ids=torch.tensor([[5]]), token_type_ids=torch.tensor([[0]]), cache=cache)


def test_training_on_one_pair_drives_the_loss_down_and_greedy_reproduces_the_target():
    model = tiny_model("bert").train()
    batch = unilm_rows("bert", [(SOURCE, TARGET)])
    labels = batch["input_ids"].masked_fill(batch["token_type_ids"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[0] > 2.0 and losses[-1] < 0.05 * losses[0], losses
    model.eval()
    prompt = unilm_rows("bert", [(SOURCE, None)])
    sep = FAMILIES["bert"][2][1]
    with torch.no_grad():
        output = model.generate(
            **prompt, max_new_tokens=10, eos_token_id=sep, pad_token_id=0, do_sample=False
        )
    assert output[0, prompt["input_ids"].shape[1] :].tolist() == [*TARGET, sep]


@pytest.mark.parametrize("family", ["bert", "roberta"])
@torch.no_grad()
def test_masked_lm_checkpoints_load_strictly_with_no_new_weights(family, tmp_path):
    model_class = FAMILIES[family][0]
    reference = tiny_reference(family, num_hidden_layers=2)
    reference.save_pretrained(tmp_path / "reference")
    masked_lm = zoo.load(tmp_path / "reference")
    assert type(masked_lm).__name__ == ("BertForMaskedLM" if family == "bert" else "RobertaForMaskedLM")
    masked_lm.save_pretrained(tmp_path / "zoo")
    for directory in (tmp_path / "reference", tmp_path / "zoo"):
        seq2seq = model_class.from_pretrained(directory)  # strict: a missing or unused weight raises
        expected = masked_lm.state_dict()
        assert seq2seq.state_dict().keys() == expected.keys()
        assert all(torch.equal(tensor, expected[name]) for name, tensor in seq2seq.state_dict().items())
        assert seq2seq.lm_head.weight is seq2seq.model.embed_tokens.weight
    # With no target the UniLM mask is the plain encoder mask: the masked LM's logits, padding included.
    batch = unilm_rows(family, [(SOURCE, None), ([31, 32], None)])
    real = batch["attention_mask"].bool()
    difference = seq2seq(**batch).logits - masked_lm(**batch).logits
    assert difference[real].abs().max() <= 1e-5


@pytest.mark.parametrize("family", ["bert", "roberta"])
@torch.no_grad()
def test_auto_model_for_seq2seq_lm_round_trip(family, tmp_path):
    model_class, config_class, _ = FAMILIES[family]
    assert AutoModelForSeq2SeqLM._model_mapping[config_class] is model_class
    model = tiny_model(family)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert type(loaded) is model_class and type(zoo.load(tmp_path)) is model_class
    batch = unilm_rows(family, [(SOURCE, TARGET)])
    assert torch.equal(loaded(**batch).logits, model(**batch).logits)
    # Registering the seq2seq head leaves reference masked-LM checkpoints to the masked-LM class.
    architecture = "BertForMaskedLM" if family == "bert" else "RobertaForMaskedLM"
    assert zoo_class_for({"model_type": family, "architectures": [architecture]}).__name__ == architecture
