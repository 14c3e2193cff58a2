"""The Hugging Face Trainer drives zoo models: training, exact gradient accumulation, save and reload.

Models are tiny (hidden 64, 2 layers) and run on CPU; every test checks numbers (losses, parameters,
logits), not only that training ran.
"""

import copy

import pytest
import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    PreTrainedTokenizerFast,
    Trainer,
    TrainingArguments,
)

import zoo

VOCAB, LENGTH = 64, 32


def gpt2_config(**overrides) -> zoo.GPT2Config:
    fields = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=LENGTH,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        embedding_dropout=0.0,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    return zoo.GPT2Config(**{**fields, **overrides})


def training_args(output_dir, **overrides) -> TrainingArguments:
    fields = dict(
        output_dir=str(output_dir),
        use_cpu=True,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        learning_rate=1e-3,
        lr_scheduler_type="constant",
        seed=0,
        disable_tqdm=True,
        max_steps=10,
        per_device_train_batch_size=8,
    )
    return TrainingArguments(**{**fields, **overrides})


def logged_losses(trainer: Trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def counting_sequences(count: int) -> list[dict[str, torch.Tensor]]:
    """Each sequence counts up (mod VOCAB) from its own start: the next token is always learnable."""
    items = []
    for start in range(count):
        ids = torch.tensor([(start + t) % VOCAB for t in range(LENGTH)])
        items.append({"input_ids": ids, "labels": ids.clone()})
    return items


# -- training lowers the loss ---------------------------------------------------------------------
def test_trainer_trains_gpt2(tmp_path):
    torch.manual_seed(0)
    model = zoo.GPT2ForCausalLM(gpt2_config())
    trainer = Trainer(model=model, args=training_args(tmp_path), train_dataset=counting_sequences(64))
    result = trainer.train()

    losses = logged_losses(trainer)
    assert len(losses) == 10 and result.global_step == 10
    assert losses[0] == pytest.approx(torch.log(torch.tensor(float(VOCAB))).item(), abs=0.3)  # ~uniform start
    assert losses[-1] < 0.9 * losses[0], losses
    assert sum(losses[-3:]) < sum(losses[:3]), losses


@pytest.fixture(scope="module")
def word_tokenizer() -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer: 5 special tokens and 27 words."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = [f"w{i}" for i in range(27)]
    tokenizer = Tokenizer(models.WordLevel({t: i for i, t in enumerate(specials + words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def test_trainer_trains_bert_masked_lm(tmp_path, word_tokenizer):
    # Sequences cycle through four words, so masked words are predictable from their neighbours.
    texts = [" ".join(f"w{(start + t) % 4}" for t in range(24)) for start in range(64)]
    dataset = [{"input_ids": ids} for ids in word_tokenizer(texts)["input_ids"]]
    assert word_tokenizer.convert_ids_to_tokens(dataset[1]["input_ids"][:3]) == ["w1", "w2", "w3"]

    config = zoo.BertConfig(
        vocab_size=len(word_tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=LENGTH,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        pad_token_id=word_tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = zoo.BertForMaskedLM(config)
    collator = DataCollatorForLanguageModeling(word_tokenizer, mlm_probability=0.3)
    batch = collator(dataset[:8])
    masked = batch["labels"] != -100
    assert masked.any() and (batch["labels"][masked] >= 5).all()  # labels only where words were masked

    trainer = Trainer(
        model=model,
        args=training_args(tmp_path, per_device_train_batch_size=16),
        train_dataset=dataset,
        data_collator=collator,
    )
    trainer.train()
    losses = logged_losses(trainer)
    assert len(losses) == 10
    assert losses[-1] < 0.9 * losses[0], losses

    trainer.save_model(tmp_path / "saved")
    plain = AutoModelForMaskedLM.from_pretrained(tmp_path / "saved")  # the transformers layout
    assert type(plain) is transformers.BertForMaskedLM
    reloaded = zoo.load(tmp_path / "saved")
    assert type(reloaded) is zoo.BertForMaskedLM
    model.eval()
    with torch.no_grad():
        assert torch.equal(reloaded(**batch).logits, model(**batch).logits)
        assert (plain(**batch).logits - model(**batch).logits).abs().max() <= 1e-5


# -- gradient accumulation is exact ---------------------------------------------------------------
def padded_sequences() -> list[dict[str, torch.Tensor]]:
    """16 sequences of 2..31 real tokens, right-padded to LENGTH: very different label counts."""
    generator = torch.Generator().manual_seed(0)
    lengths = [2, 31, 3, 29, 5, 4, 30, 2, 27, 3, 6, 31, 2, 4, 25, 3]
    items = []
    for length in lengths:
        ids = torch.zeros(LENGTH, dtype=torch.long)
        ids[:length] = torch.randint(1, VOCAB, (length,), generator=generator)
        labels = torch.full((LENGTH,), -100)
        labels[:length] = ids[:length]
        mask = torch.zeros(LENGTH, dtype=torch.long)
        mask[:length] = 1
        items.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return items


def test_padded_data_tells_exact_from_naive_accumulation():
    """Guard for the next test: averaging per-micro-batch mean losses would visibly change the gradient."""
    torch.manual_seed(0)
    model = zoo.GPT2ForCausalLM(gpt2_config())
    model.train()
    batch = {
        k: torch.stack([item[k] for item in padded_sequences()[:8]])
        for k in ("input_ids", "attention_mask", "labels")
    }
    halves = [{k: v[:4] for k, v in batch.items()}, {k: v[4:] for k, v in batch.items()}]

    def gradient(loss_fn):
        model.zero_grad()
        loss_fn().backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    exact = gradient(lambda: model(**batch).loss)
    naive = gradient(lambda: sum(model(**half).loss for half in halves) / 2)
    assert (exact - naive).abs().max().item() > 1e-3


def accumulation_run(tmp_path, initial_state, batch_size, accumulation) -> tuple[dict, list[float]]:
    model = zoo.GPT2ForCausalLM(gpt2_config())
    model.load_state_dict(initial_state)
    args = training_args(
        tmp_path / f"bs{batch_size}x{accumulation}",
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_steps=2,
        optim="sgd",
        learning_rate=0.5,
        max_grad_norm=0.0,  # no clipping: the raw accumulated gradient is applied
        train_sampling_strategy="sequential",
    )
    trainer = Trainer(model=model, args=args, train_dataset=padded_sequences())
    trainer.train()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, logged_losses(trainer)


def test_gradient_accumulation_matches_the_full_batch(tmp_path):
    torch.manual_seed(0)
    initial = copy.deepcopy(zoo.GPT2ForCausalLM(gpt2_config()).state_dict())

    accumulated, accumulated_losses = accumulation_run(tmp_path, initial, batch_size=4, accumulation=2)
    full, full_losses = accumulation_run(tmp_path, initial, batch_size=8, accumulation=1)

    moved = max((full[k] - initial[k]).abs().max().item() for k in initial)
    assert moved > 1e-2  # the two SGD steps changed the weights substantially ...
    difference = max((accumulated[k] - full[k]).abs().max().item() for k in full)
    assert difference <= 1e-6  # ... and identically
    assert len(accumulated_losses) == len(full_losses) == 2
    assert accumulated_losses == pytest.approx(full_losses, abs=1e-5)
    # the first logged loss is the token-weighted mean over all 8 sequences, not a mean of means
    model = zoo.GPT2ForCausalLM(gpt2_config())
    model.load_state_dict(initial)
    batch = {
        k: torch.stack([item[k] for item in padded_sequences()[:8]])
        for k in ("input_ids", "attention_mask", "labels")
    }
    with torch.no_grad():
        assert accumulated_losses[0] == pytest.approx(model(**batch).loss.item(), abs=1e-5)


# -- save and reload ------------------------------------------------------------------------------
def test_saved_model_reloads_identically(tmp_path):
    torch.manual_seed(0)
    model = zoo.GPT2ForCausalLM(gpt2_config())
    initial_embeddings = model.model.embed_tokens.weight.detach().clone()
    trainer = Trainer(
        model=model, args=training_args(tmp_path, max_steps=3), train_dataset=counting_sequences(32)
    )
    trainer.train()
    trainer.save_model(tmp_path / "saved")

    input_ids = torch.stack([item["input_ids"] for item in counting_sequences(4)])
    model.eval()
    with torch.no_grad():
        trained = model(input_ids).logits
        reloaded = zoo.GPT2ForCausalLM.from_pretrained(tmp_path / "saved")
        assert torch.equal(reloaded(input_ids).logits, trained)
        # Trainer checkpoints are in the transformers layout: plain transformers loads them
        auto = AutoModelForCausalLM.from_pretrained(tmp_path / "saved")
        assert type(auto) is transformers.GPT2LMHeadModel
        assert (auto(input_ids).logits - trained).abs().max() <= 1e-5
    # training moved the weights away from the initialisation, and the tie survived the round trip
    assert (reloaded.model.embed_tokens.weight - initial_embeddings).abs().max() > 1e-4
    assert reloaded.lm_head.weight.data_ptr() == reloaded.model.embed_tokens.weight.data_ptr()
