"""trainers.run_task / build_trainer: every task trains through the Hugging Face Trainer and leaves a
reloadable model, metrics, a card and a loss curve; resuming continues the same run; a save cut short
never replaces the last good checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from huggingface_hub import ModelCard
from test_auto_loader import FAMILY_FOR_TASK, LABELS, RECORDS
from tiny_models import save_tiny_checkpoint
from transformers import Seq2SeqTrainingArguments, Trainer, TrainingArguments

from auto_loader import AutoLoader
from tasks import get_task
from tasks.base import model_inputs
from trainers import TrainingSetupError, build_trainer, last_complete_checkpoint, run_task

METRIC_OF_TASK = {
    "title-generation": "eval_rouge1",
    "poetry-generation": "eval_rouge1",
    "seq2seq": "eval_rouge1",
    "lm": "eval_perplexity",
    "masklm": "eval_perplexity",
    "ner": "eval_f1",
    "ner-crf": "eval_f1",
    "classification": "eval_accuracy",
    "semantic-matching": "eval_accuracy",
    "embedding": "eval_spearman",
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    for family in set(FAMILY_FOR_TASK.values()):
        save_tiny_checkpoint(family, root / f"tiny-{family}")
    return root


def _args(task_name: str, output_dir, **extra):
    common = dict(
        output_dir=str(output_dir), max_steps=6, per_device_train_batch_size=8,
        learning_rate=1e-2 if get_task(task_name).head in ("seq2seq", "causal-lm", "masked-lm") else 3e-3,
        per_device_eval_batch_size=2, logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
        seed=0, disable_tqdm=True,
    )  # fmt: skip
    common.update(extra)
    if get_task(task_name).head == "seq2seq":
        return Seq2SeqTrainingArguments(
            predict_with_generate=True, generation_max_length=6, generation_num_beams=2, **common
        )
    return TrainingArguments(**common)


@pytest.mark.parametrize("task_name", list(FAMILY_FOR_TASK))
def test_every_task_runs_through_trainer_and_saves_what_it_should(task_name, model_dir, tmp_path):
    family = FAMILY_FOR_TASK[task_name]
    loader = AutoLoader(task_name, f"tiny-{family}", model_dir=model_dir, **({"labels": LABELS[task_name]} if task_name in LABELS else {}))  # fmt: skip
    records = RECORDS[task_name] * 2
    result = run_task(
        task_name, loader.get_model(), loader.get_tokenizer(), _args(task_name, tmp_path / "out"),
        train_records=records, eval_records=records, labels=LABELS.get(task_name), max_length=32,
        predict_inputs=[records[0].get("text") or records[0].get("source") or " ".join(records[0]["tokens"])]
        if task_name not in ("semantic-matching", "embedding") else None,
    )  # fmt: skip
    out = result.output_dir
    losses = [e["loss"] for e in result.trainer.state.log_history if "loss" in e]
    assert len(losses) == 6 and losses[-1] < losses[0], losses
    metric = METRIC_OF_TASK[task_name]
    saved = json.loads((out / "all_results.json").read_text())
    assert (
        metric in result.eval_metrics
        and metric in saved
        and saved[metric] == pytest.approx(result.eval_metrics[metric])
    )
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = ModelCard.load(out / "README.md")
    # the card names the library that loads what was saved
    model_type = json.loads((out / "config.json").read_text())["model_type"]
    library = (
        "sentence-transformers" if (out / "modules.json").is_file()
        else "zoo-models" if model_type.startswith("zoo_") else "transformers"
    )  # fmt: skip
    assert task_name in card.data.tags and card.data.library_name == library
    assert any(r.metric_type == metric.removeprefix("eval_") for r in card.data.eval_results or [])
    assert not (out / ".saving").exists()

    reloaded = AutoLoader(task_name, str(out))
    assert reloaded.directory == out and type(reloaded.get_model()) is type(loader.get_model())
    # what the family's models take: a WordPiece tokenizer's token_type_ids are no T5 input (a TypeError)
    batch = model_inputs(
        loader.get_tokenizer()(["the cat sat on the mat"], return_tensors="pt"), loader.get_model()
    )
    if family == "t5":
        batch["decoder_input_ids"] = batch["input_ids"][:, :2]
    model = result.trainer.model.eval()
    with torch.no_grad():
        expected, got = model(**batch), reloaded.get_model()(**batch)
    key = "pooler_output" if task_name == "embedding" else "logits"
    torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)


def _interrupted_save(monkeypatch, at_step: int):
    original = Trainer._save_rng_state

    def crash(self, output_dir):
        if self.state.global_step == at_step:
            raise KeyboardInterrupt  # Ctrl-C half-way through the checkpoint
        return original(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", crash)


def test_resume_continues_the_same_run_after_an_interrupted_save(model_dir, tmp_path, monkeypatch):
    def run(output_dir, resume=None):
        torch.manual_seed(0)  # the new head's initial weights
        loader = AutoLoader(
            "classification", "tiny-llama", model_dir=model_dir, labels=LABELS["classification"]
        )
        args = _args(
            "classification", output_dir, max_steps=8, save_strategy="steps", save_steps=4, learning_rate=3e-3
        )
        records = RECORDS["classification"] * 4
        return run_task(
            "classification",
            loader.get_model(),
            loader.get_tokenizer(),
            args,
            records,
            resume_from_checkpoint=resume,
        )

    def losses(result):
        return {e["step"]: e["loss"] for e in result.trainer.state.log_history if "loss" in e}

    uninterrupted = losses(run(tmp_path / "a"))
    _interrupted_save(monkeypatch, at_step=8)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b")
    monkeypatch.undo()
    assert (tmp_path / "b" / "checkpoint-8").is_dir()  # the partial save is there ...
    assert last_complete_checkpoint(tmp_path / "b") == str(tmp_path / "b" / "checkpoint-4")  # ... and skipped
    resumed = losses(run(tmp_path / "b", resume=True))
    assert sorted(resumed) == list(range(1, 9))  # steps 1-4 come from checkpoint-4's trainer state
    for step in resumed:
        assert resumed[step] == pytest.approx(uninterrupted[step], abs=1e-6), (step, resumed, uninterrupted)


def test_seq2seq_needs_seq2seq_arguments(model_dir, tmp_path):
    loader = AutoLoader("title-generation", "tiny-t5", model_dir=model_dir)
    with pytest.raises(TrainingSetupError, match="Seq2SeqTrainingArguments"):
        build_trainer("title-generation", loader.get_model(), loader.get_tokenizer(),
                      TrainingArguments(output_dir=str(tmp_path), use_cpu=True), RECORDS["title-generation"])  # fmt: skip


@pytest.mark.parametrize(
    ("task_name", "family", "aligned"),
    [("ner", "bert", False), ("classification", "llama", False), ("lm", "gpt2", True)],
)
def test_training_aligns_only_the_special_tokens_a_model_uses(
    task_name, family, aligned, model_dir, tmp_path
):
    """Trainer copies the tokenizer's pad / bos / eos ids into the config; a model that cannot generate
    takes only pad (a WordPiece tokenizer's [SEP] is no eos of a BERT tagger), a causal LM all three."""
    loader = AutoLoader(task_name, f"tiny-{family}", model_dir=model_dir, **({"labels": LABELS[task_name]} if task_name in LABELS else {}))  # fmt: skip
    model, tokenizer = loader.get_model(), loader.get_tokenizer()
    before = {name: getattr(model.config, name) for name in ("bos_token_id", "eos_token_id")}
    args = _args(task_name, tmp_path, max_steps=1, use_cpu=False)
    assert args.dataloader_pin_memory  # transformers' default ...
    trainer = build_trainer(task_name, model, tokenizer, args, train_records=RECORDS[task_name])
    # ... kept only with an accelerator to pin for (torch warns on every data loader otherwise)
    assert trainer.args.dataloader_pin_memory == torch.accelerator.is_available()
    trainer.train()
    assert model.config.pad_token_id == tokenizer.pad_token_id
    after = {name: getattr(model.config, name) for name in ("bos_token_id", "eos_token_id")}
    if aligned:
        assert after["eos_token_id"] in (tokenizer.eos_token_id, [tokenizer.eos_token_id])
    else:
        assert after == before
        if tokenizer.eos_token_id is not None:
            assert (
                model.config.eos_token_id != tokenizer.eos_token_id
                or before["eos_token_id"] == tokenizer.eos_token_id
            )
