"""The ``zoo`` command line: every subcommand in-process through ``trainers.cli.main``, plus the installed
console script once. Exit codes: 0 success, 1 a known failure (one line on stderr), 2 usage."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import transformers
from reference_models import tiny_reference
from tiny_models import save_tiny_checkpoint

import zoo
from auto_loader import CATALOG
from tasks import task_names
from trainers.cli import EXAMPLES_DIR, TRAIN_SCRIPTS, main
from zoo.loading import read_config_dict
from zoo.registry import zoo_class_for

HAS_PUBLISH = importlib.util.find_spec("trainers.publish") is not None
needs_publish = pytest.mark.skipif(not HAS_PUBLISH, reason="trainers.publish (push_to_hub) is not there yet")


@pytest.mark.parametrize("command", [[], ["list"], ["info"], ["convert"], ["predict"], ["train"], ["push"]])
def test_every_help_exits_0(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: zoo")
    assert "exit codes: 0 success; 1" in out


def test_usage_errors_exit_2(capsys):
    for argv in (["bogus"], [], ["info"], ["list", "--nope"], ["convert", "a", "b", "--to", "onnx"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2, argv
    assert "usage: zoo" in capsys.readouterr().err


def test_list_shows_catalog_and_tasks(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for entry in CATALOG.values():
        assert entry.name in out and entry.hub_id in out
    for name in task_names():
        assert name in out
    assert len(CATALOG) == 25
    for family in zoo.families():
        assert f"\n{family} " in out  # the families table

    assert main(["list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in data["models"]] == list(CATALOG)
    families = {f["name"]: f for f in data["families"]}
    assert families["llama"]["reads"] == ["llama", "mistral", "qwen2"] and families["gpt"]["reads"] == []
    assert families["qwen3"]["kind"] == "decoder" and "sequence-labeling" in families["qwen3"]["heads"]
    assert {t["name"]: t["head"] for t in data["tasks"]}["ner"] == "sequence-labeling"
    assert {t["name"] for t in data["tasks"]} == set(task_names())


def test_info_catalog_entry(capsys):
    assert main(["info", "glm-large-ch"]) == 0
    out = capsys.readouterr().out
    assert "family:      glm" in out
    assert "BAAI/glm-large-chinese" in out
    assert "title-generation" in out  # a task it supports
    assert "glm-large-ch.md" in out

    assert main(["info", "GLM-large-ch", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (
        data["family"] == "glm"
        and data["hub_id"] == "BAAI/glm-large-chinese"
        and data["parameters"] == "335M"
    )


def test_info_unknown_name_exits_1_with_close_match(capsys):
    assert main(["info", "glm-larg-ch"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zoo: error: ")
    assert "did you mean 'glm-large-ch'" in lines[0]


def test_info_local_directory(tmp_path, capsys):
    directory = save_tiny_checkpoint("bert", tmp_path / "tiny-bert")
    assert main(["info", str(directory), "--json"]) == 0
    out = capsys.readouterr().out
    # In-process only: deepspeed's one-time "Setting accelerator to CPU" log line goes to the stdout its
    # logger bound at import (pytest's); the installed `zoo` sends it to stderr.
    data = json.loads(out[out.index("{") :])
    assert data["family"] == "bert"
    assert "sequence-classification" in data["heads"]
    model = zoo_class_for(read_config_dict(directory), source="config.json").from_pretrained(directory)
    expected = sum(p.numel() for p in model.parameters())
    assert data["parameters"] == expected > 0


def test_convert_round_trip_matches_transformers(tmp_path, capsys):
    reference = tiny_reference("gpt2").eval()
    reference.save_pretrained(tmp_path / "ref")
    assert main(["convert", str(tmp_path / "ref"), str(tmp_path / "zoo"), "--to", "zoo"]) == 0
    assert main(["convert", str(tmp_path / "zoo"), str(tmp_path / "back"), "--to", "transformers"]) == 0
    assert "wrote transformers layout" in capsys.readouterr().out
    back = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "back").eval()
    ids = torch.randint(3, 200, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, reference(ids).logits, atol=1e-5, rtol=1e-5)


def test_convert_missing_source_exits_1(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nothing"), str(tmp_path / "out"), "--to", "zoo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("zoo: error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_predict_classification_prints_labels(tmp_path, capsys):
    directory = save_tiny_checkpoint("bert", tmp_path / "tiny-bert")
    argv = ["predict", "classification", str(directory), "a good film", "a bad film", "--labels", "neg,pos"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        label, score = line.split("\t")
        assert label in ("neg", "pos") and 0.5 <= float(score) <= 1.0

    assert main([*argv, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["input"] for r in rows] == ["a good film", "a bad film"]
    assert all(r["prediction"]["label"] in ("neg", "pos") for r in rows)


def test_predict_semantic_matching_pairs(tmp_path, capsys):
    directory = save_tiny_checkpoint("bert", tmp_path / "tiny-bert")
    argv = ["predict", "semantic-matching", str(directory), "a cat|||a kitten", "--labels", "no,yes"]
    assert main(argv) == 0
    label, _ = capsys.readouterr().out.strip().split("\t")
    assert label in ("no", "yes")
    assert main(["predict", "semantic-matching", str(directory), "no separator"]) == 1
    assert "|||" in capsys.readouterr().err


def test_train_unsupported_task_exits_1(capsys):
    assert main(["train", "embedding"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("zoo: error: ") and "\n" not in err
    for task in TRAIN_SCRIPTS:
        assert task in err


def test_train_without_examples_exits_1(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("trainers.cli.EXAMPLES_DIR", tmp_path / "absent")
    assert main(["train", "ner"]) == 1
    assert "source tree" in capsys.readouterr().err


def test_train_ner_runs_the_example(tmp_path, monkeypatch):
    assert (EXAMPLES_DIR / "ner.py").is_file()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(EXAMPLES_DIR.parent)
    out = tmp_path / "ner"
    assert main(["train", "ner", "--output_dir", str(out), "--max_steps", "3"]) == 0
    results = json.loads((out / "all_results.json").read_text())
    assert any(key.startswith("eval_") for key in results)
    assert (out / "config.json").is_file()


@needs_publish
def test_push_prints_commit_url(tmp_path, hub_server, hub_token, new_repo_id, capsys):
    directory = save_tiny_checkpoint("bert", tmp_path / "tiny-bert")
    assert main(["push", str(directory), new_repo_id, "--token", hub_token, "--message", "cli push"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(hub_server.endpoint) and new_repo_id in out and "/commit/" in out
    from huggingface_hub import HfApi

    files = HfApi(endpoint=hub_server.endpoint, token=hub_token).list_repo_files(new_repo_id)
    assert "config.json" in files

    # the same directory again: nothing to commit
    assert main(["push", str(directory), new_repo_id, "--token", hub_token]) == 0
    assert capsys.readouterr().out.strip() == "no changes"


@needs_publish
def test_push_without_token_exits_1(tmp_path, new_repo_id, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    directory = save_tiny_checkpoint("bert", tmp_path / "tiny-bert")
    capsys.readouterr()  # the checkpoint writer's progress bar
    assert main(["push", str(directory), new_repo_id]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("zoo: error: ") and "\n" not in err and "Traceback" not in err
    assert captured.out == ""


def test_console_script_help():
    script = shutil.which("zoo", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    assert script is not None, "the zoo console script is not installed (pip install -e .)"
    completed = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    for command in ("list", "info", "convert", "predict", "train", "push"):
        assert command in completed.stdout
    completed = subprocess.run([script, "info", "glm-larg-ch"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 1
    assert completed.stderr.count("\n") == 1 and "did you mean" in completed.stderr


def test_train_unknown_flag_is_a_usage_error_with_close_matches(capsys):
    for flag, suggestion in (("--max_stepz", "--max_steps"), ("--bogus_flag", None)):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "ner", "--output_dir", "out", flag, "1"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and f"zoo: error: 'zoo train ner' has no flag {flag}" in err
        assert (f"did you mean {suggestion}" in err) if suggestion else "did you mean" not in err


def test_info_of_a_missing_directory_says_so(tmp_path, capsys):
    for name in (str(tmp_path / "no" / "such" / "dir"), "./no/such/dir"):
        assert main(["info", name]) == 1
        err = capsys.readouterr().err.strip()
        assert err == f"zoo: error: no such directory: {name}"


def test_convert_refuses_an_existing_destination(tmp_path, capsys):
    directory = save_tiny_checkpoint("gpt2", tmp_path / "ckpt")
    out = tmp_path / "out"
    out.mkdir()  # an empty directory is no conversion to lose
    argv = ["convert", str(directory), str(out), "--to", "zoo"]
    assert main(argv) == 0
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"zoo: error: {out} exists and is not empty; pass --overwrite to write into it"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine" and read_config_dict(out)["model_type"] == "zoo_gpt2"
    for overwrite in ([], ["--overwrite"]):
        assert main(["convert", str(directory), str(out / "config.json"), "--to", "zoo", *overwrite]) == 1
        err = capsys.readouterr().err.strip()
        assert err.endswith(f"zoo: error: {out / 'config.json'} is a file; the destination is a directory")


def test_multi_line_errors_print_as_one_line(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    directory = save_tiny_checkpoint("gpt2", tmp_path / "ckpt")
    state = load_file(directory / "model.safetensors")
    state["bogus.weight"] = torch.zeros(1)
    save_file(state, directory / "model.safetensors", metadata={"format": "pt"})
    assert main(["convert", str(directory), str(tmp_path / "out"), "--to", "zoo"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ":;" not in err
    assert f"weights from {directory} do not match the model: unexpected (1): bogus.weight" in err
