"""The fine-tuning examples run end to end offline, write their outputs, and what they save reloads.

Every script runs as a user runs it (a subprocess of ``sys.executable`` from the repository root) on
its tiny default for 10 steps. Each test checks the exit code, the metrics JSON (expected keys, finite
numbers in range, global step 10), the loss-curve PNG, and that the saved model reloads through
``AutoLoader`` (or PEFT) and predicts exactly what the script printed. Bad data files fail with a
message naming the file, the row and the column.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from auto_loader import AutoLoader

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEPS = 10


def _module(name: str):
    """An example script as a module (``examples/`` on the path for its ``import common``)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def run_example(
    script: str,
    output_dir: Path,
    *flags: str,
    steps: int | None = STEPS,
    check: bool = True,
    offline: bool = True,
):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if offline:
        env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    command = [sys.executable, str(EXAMPLES / f"{script}.py"), *flags, "--output_dir", str(output_dir)]
    if steps is not None:
        command += ["--max_steps", str(steps)]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert completed.returncode == 0, completed.stderr[-4000:]
    return completed


def printed_predictions(stdout: str) -> list[str]:
    return [
        line.split("prediction: ", 1)[1] for line in stdout.splitlines() if line.startswith("  prediction: ")
    ]


def check_outputs(output_dir: Path, keys: set[str], steps: int = STEPS) -> dict:
    results = json.loads((output_dir / "all_results.json").read_text())
    assert keys <= set(results), f"missing {keys - set(results)} in {sorted(results)}"
    for key in keys:
        assert math.isfinite(results[key]), (key, results[key])
    assert results["train_loss"] > 0
    assert (output_dir / "loss_curve.png").read_bytes()[:8] == PNG_MAGIC
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == steps
    assert (output_dir / "README.md").is_file()
    return results


ROUGE = {"eval_rouge1", "eval_rouge2", "eval_rougeL", "eval_loss", "train_loss"}


@pytest.mark.slow  # 22 s (title) and 35 s (poetry) on 2 busy cores
@pytest.mark.parametrize(
    ("script", "task"), [("title_generation", "title-generation"), ("poetry_generation", "poetry-generation")]
)
def test_generation_examples(tmp_path, script, task):
    completed = run_example(script, tmp_path, "--num_predictions", "2")
    results = check_outputs(tmp_path, ROUGE)
    assert all(0.0 <= results[k] <= 1.0 for k in ROUGE if "rouge" in k)
    sources = [
        line.split("input:      ", 1)[1] for line in completed.stdout.splitlines() if "input:      " in line
    ]
    assert len(sources) == 2
    predictor = AutoLoader(task, str(tmp_path)).get_predictor()
    again = predictor.predict([eval(source) for source in sources])  # repr'd strings of our own sample data
    assert [repr(text) for text in again] == printed_predictions(completed.stdout)


@pytest.mark.parametrize("crf", [False, pytest.param(True, marks=pytest.mark.slow)])  # 20 s each
def test_ner_example(tmp_path, crf):
    completed = run_example("ner", tmp_path, *(["--crf"] if crf else []), "--num_predictions", "3")
    results = check_outputs(
        tmp_path, {"eval_f1", "eval_precision", "eval_recall", "eval_token_accuracy", "eval_loss"}
    )
    assert 0.0 <= results["eval_f1"] <= 1.0 and 0.0 <= results["eval_token_accuracy"] <= 1.0
    loader = AutoLoader("ner-crf" if crf else "ner", str(tmp_path))
    assert type(loader.get_model()).__name__ == (
        "BertForTokenClassificationCRF" if crf else "BertForTokenClassification"
    )
    assert set(loader.get_model().config.label2id) == {
        "O",
        "B-PER",
        "I-PER",
        "B-LOC",
        "I-LOC",
        "B-ORG",
        "I-ORG",
    }
    texts = [
        "Ken Ito lives in Oslo .",
        "Ken Ito works for Delta Foods in Cairo .",
        "United Press opened a new office in Lima .",
    ]
    show = _module("ner").show_entities
    assert [show(e) for e in loader.get_predictor().predict(texts)] == printed_predictions(completed.stdout)


def logged_losses(output_dir: Path) -> list[tuple[int, float]]:
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return [(entry["step"], entry["loss"]) for entry in history if "loss" in entry]


@pytest.fixture(scope="module")
def ner_runs(tmp_path_factory) -> dict[str, Path]:
    """ner.py in three processes with one seed: 8 steps straight; 4 steps to checkpoint-4; resumed from it to 8.

    A constant learning rate: with the default linear decay the 4-step run would follow another schedule.
    """
    root = tmp_path_factory.mktemp("ner-runs")
    flags = ["--logging_steps", "1", "--save_steps", "4", "--save_strategy", "steps",
             "--lr_scheduler_type", "constant", "--num_predictions", "0"]  # fmt: skip
    run_example("ner", root / "straight", *flags, steps=8)
    run_example("ner", root / "resumed", *flags, steps=4)
    checkpoint = root / "resumed" / "checkpoint-4"
    run_example("ner", root / "resumed", *flags, "--resume_from_checkpoint", str(checkpoint), steps=8)
    return {"straight": root / "straight", "checkpoint": checkpoint, "resumed": root / "resumed"}


def test_same_seed_same_tokenizer_and_losses_in_another_process(ner_runs):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        straight = (ner_runs["straight"] / name).read_text()
        assert (ner_runs["checkpoint"] / name).read_text() == straight, f"{name} differs between two runs"
    # Resumed, the tokenizer is the checkpoint's (its saved config gains from_pretrained's keywords).
    resumed = (ner_runs["resumed"] / "tokenizer.json").read_text()
    assert resumed == (ner_runs["straight"] / "tokenizer.json").read_text(), "another tokenizer resumed"
    assert logged_losses(ner_runs["checkpoint"]) == logged_losses(ner_runs["straight"])[:4]


def test_resumed_run_continues_with_the_losses_of_an_uninterrupted_one(ner_runs):
    straight, resumed = logged_losses(ner_runs["straight"]), logged_losses(ner_runs["resumed"])
    assert [step for step, _ in resumed] == list(range(1, 9)), resumed
    assert resumed == straight
    results = {
        name: json.loads((ner_runs[name] / "all_results.json").read_text())
        for name in ("straight", "resumed")
    }
    assert results["resumed"]["eval_loss"] == results["straight"]["eval_loss"]


def test_semantic_matching_example(tmp_path):
    completed = run_example("semantic_matching", tmp_path, "--num_predictions", "3")
    results = check_outputs(tmp_path, {"eval_accuracy", "eval_macro_f1", "eval_loss"})
    # 8 validation pairs: accuracy is a multiple of 1/8
    assert results["eval_accuracy"] * 8 == pytest.approx(round(results["eval_accuracy"] * 8))
    loader = AutoLoader("semantic-matching", str(tmp_path))
    assert loader.get_model().config.id2label == {0: "0", 1: "1"}
    pairs = [
        ("How do I change my email address?", "What is the way to update my email?"),
        ("The dog is sleeping on the sofa.", "The cat is running in the park."),
        ("When does the bank open?", "What time does the bank open?"),
    ]
    again = [f"{p['label']} (p={p['score']:.2f})" for p in loader.get_predictor().predict(pairs)]
    assert again == printed_predictions(completed.stdout)


def test_push_to_hub_uploads_model_tokenizer_and_the_run_card(tmp_path, hub_server, hub_token, new_repo_id):
    """``--push_to_hub`` through the project's local Hub-protocol server (HF_ENDPOINT points there)."""
    from huggingface_hub import HfApi, ModelCard, hf_hub_download

    completed = run_example(
        "semantic_matching", tmp_path, "--push_to_hub", "--hub_model_id", new_repo_id, "--hub_token", hub_token,
        steps=4, offline=False,
    )  # fmt: skip
    files = set(HfApi(token=hub_token).list_repo_files(new_repo_id))
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= files, files
    card = ModelCard.load(hf_hub_download(new_repo_id, "README.md", token=hub_token))
    assert "semantic-matching" in card.data.tags and "zoo-models" in card.data.tags
    assert any(r.metric_type == "accuracy" for r in card.data.eval_results or [])
    assert hub_token not in completed.stdout + completed.stderr
    assert all(hub_token not in entry.path for entry in hub_server.log)


@pytest.mark.slow  # 20 s
def test_language_modeling_example(tmp_path):
    completed = run_example("language_modeling", tmp_path, "--max_new_tokens", "8")
    results = check_outputs(tmp_path, {"eval_perplexity", "eval_token_accuracy", "eval_loss"})
    assert results["eval_perplexity"] > 1.0 and 0.0 <= results["eval_token_accuracy"] <= 1.0
    loader = AutoLoader("lm", str(tmp_path))
    assert type(loader.get_model()).__name__ == "GPT" and loader.get_model().tokenizer is not None
    again = loader.get_predictor().predict(["The keeper", "Every spring"])
    assert [repr(text) for text in again] == printed_predictions(completed.stdout)
    assert "sampled (top-k 20, temperature 0.8):\nThe keeper" in completed.stdout


@pytest.mark.slow  # 21 s
def test_lora_example(tmp_path):
    from trainers.lora import load_adapter

    completed = run_example("lora_finetune", tmp_path, "--num_predictions", "2")
    check_outputs(tmp_path, ROUGE)
    adapter = json.loads((tmp_path / "adapter_config.json").read_text())
    # under transformers' module names: PEFT on plain transformers' Llama loads it
    attention = ["self_attn.k_proj", "self_attn.o_proj", "self_attn.q_proj", "self_attn.v_proj"]
    assert sorted(adapter["target_modules"]) == attention and adapter["r"] == 8
    assert adapter["base_model_name_or_path"] == str(tmp_path / "base-model")
    assert not (tmp_path / "model.safetensors").exists()  # the adapter only, not a full model
    printed = printed_predictions(completed.stdout)
    sources = ["Give a synonym for glad.", "Give an antonym for cold."]
    base = AutoLoader("seq2seq", str(tmp_path / "base-model"))
    model = load_adapter(base.get_model(), tmp_path)
    tokenizer = base.get_tokenizer()
    from tasks import get_task

    assert [repr(t) for t in get_task("seq2seq").predictor(model, tokenizer).predict(sources)] == printed
    import peft
    import torch
    import transformers

    plain = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "base-model")
    plain = peft.PeftModel.from_pretrained(plain, tmp_path).eval()
    ids = tokenizer(sources[0], return_tensors="pt").input_ids
    with torch.no_grad():
        assert (plain(ids).logits - model(ids).logits).abs().max() <= 1e-5
    merged = AutoLoader("seq2seq", str(tmp_path / "merged")).get_predictor().predict(sources)
    assert [repr(t) for t in merged] == printed
    assert "answers as base + adapter: True" in completed.stdout


def test_yaml_config_with_override(tmp_path):
    # the file comes first; flags after it override it
    run_example("ner", tmp_path, str(EXAMPLES / "configs" / "ner.yaml"), steps=5)
    check_outputs(tmp_path, {"eval_f1", "eval_loss"}, steps=5)
    card = (tmp_path / "README.md").read_text()
    assert "| learning_rate | 0.005 |" in card  # from the YAML file
    config = json.loads((tmp_path / "config.json").read_text())  # the card says which layout it is
    if config["model_type"].startswith("zoo_"):
        assert f"Saved in the zoo layout (`model_type: {config['model_type']}`" in card
    else:
        assert f"Saved in the transformers layout as `transformers.{config['architectures'][0]}`" in card


def test_every_script_has_a_config_that_parses():
    common = _module("common")
    for name in (
        "title_generation",
        "poetry_generation",
        "ner",
        "semantic_matching",
        "language_modeling",
        "lora_finetune",
    ):
        module = _module(name)
        types = [
            cls
            for cls in vars(module).values()
            if isinstance(cls, type) and cls.__module__ == module.__name__
        ]
        config = EXAMPLES / "configs" / f"{name}.yaml"
        values = common.read_run_config(config, [*types, *_training_types()])
        assert values["output_dir"].startswith("outputs/") and "model_name" in values, name


def _training_types():
    from transformers import Seq2SeqTrainingArguments

    return [Seq2SeqTrainingArguments]


# -- bad data files -------------------------------------------------------------------------------
@pytest.fixture
def common():
    return _module("common")


def test_unknown_config_key_is_named(tmp_path, common):
    config = tmp_path / "run.yaml"
    config.write_text("modle_name: tiny-bert\n")
    with pytest.raises(
        common.ConfigError, match=r"run.yaml: unknown key\(s\): modle_name \(did you mean model_name"
    ):
        common.read_run_config(config, [common.ModelArguments])


def test_missing_column_names_file_and_column(tmp_path, common):
    path = tmp_path / "pairs.tsv"
    path.write_text("text\ttext_pair\nA cat.\tA dog.\n")
    args = common.DataArguments(train_file=str(path))
    with pytest.raises(common.TaskDataError, match=r"pairs.tsv has no column\(s\) label"):
        common.load_split(args, "train", {"text": "text", "text_pair": "text_pair", "label": "label"})


def test_empty_value_names_file_row_and_column(tmp_path, common):
    path = tmp_path / "titles.jsonl"
    path.write_text('{"body": "A long text.", "title": "Text"}\n{"body": "Another text.", "title": "  "}\n')
    args = common.DataArguments(train_file=str(path))
    with pytest.raises(common.DataFileError, match=r"titles.jsonl: row 2, column 'title' is empty"):
        common.load_split(args, "train", {"source": "body", "target": "title"})


def test_unknown_tag_names_file_sentence_line_and_column(tmp_path, common):
    train = tmp_path / "train.conll"
    train.write_text("Ken B-PER\nlives O\n\nOslo B-LOC\n")
    dev = tmp_path / "dev.conll"
    dev.write_text("Anna B-PER\n\nAcme B-ORG\nCorp I-ORG\n")
    args = common.DataArguments(train_file=str(train), validation_file=str(dev))
    columns = {"tokens": "tokens", "tags": "tags"}
    records = common.load_split(args, "train", columns, conll=True)
    validation = common.load_split(args, "validation", columns, conll=True)
    with pytest.raises(
        common.DataFileError, match=r"dev.conll: sentence 2 \(line 3\), column 'tag': unknown label 'B-ORG'"
    ):
        common.check_labels(validation, "tags", ["O", "B-PER", "B-LOC"], valid_from=records.source)


def test_resuming_from_a_directory_without_a_tokenizer_says_so(tmp_path, common):
    from tasks import get_task

    with pytest.raises(common.CheckpointNotFoundError, match="holds no tokenizer"):
        common.load_model(get_task("ner"), common.ModelArguments(), ["a text"], checkpoint=str(tmp_path))


def test_unknown_label_fails_the_script(tmp_path):
    dev = tmp_path / "dev.tsv"
    dev.write_text("text\ttext_pair\tlabel\nA cat.\tA cat.\t1\nA cat.\tA dog.\tmaybe\n")
    completed = run_example("semantic_matching", tmp_path / "out", "--validation_file", str(dev), check=False)
    assert completed.returncode != 0
    assert f"{dev}: row 2, column 'label': unknown label 'maybe'" in completed.stderr
    assert not (tmp_path / "out").exists()  # nothing trained


def test_quickstart_passes_its_checks_and_exits_zero():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, str(EXAMPLES / "quickstart.py"), "--steps", "60"]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    out = completed.stdout
    assert "same tokens without the KV cache: True" in out and "identical tokens after export: True" in out
    assert out.rstrip().endswith("all checks passed")
    assert "FutureWarning" not in completed.stderr and "pin_memory" not in completed.stderr


def test_quickstart_exits_nonzero_naming_a_failed_check(monkeypatch, capsys):
    quickstart = _module("quickstart")
    monkeypatch.setattr(
        quickstart,
        "parity_table",
        lambda workdir: ["T5 logits differ from transformers by 1.00e-02 > 0.0001"],
    )
    monkeypatch.setattr(
        quickstart,
        "train_and_generate",
        lambda args, workdir: ["cached generation differs from uncached generation"],
    )
    monkeypatch.setattr(sys, "argv", ["quickstart.py"])
    with pytest.raises(SystemExit) as exit_info:
        quickstart.main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "FAILED: T5 logits differ" in err and "cached generation differs from uncached generation" in err


def test_conll_line_numbers_skip_a_bom_before_docstart():
    """The line an error names is the sentence's own: a BOM before -DOCSTART- is no sentence."""
    common = _module("common")
    lines = ["\ufeff-DOCSTART- -X- O", "", "Ken B-PER", "Ito I-PER", "", "Oslo B-LOC"]
    assert common._conll_sentence_lines(lines) == [3, 6]
