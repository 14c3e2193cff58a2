"""Distributed training on CPU: DDP and DeepSpeed ZeRO-2/3 through the Trainer under torchrun with two
gloo processes, the shipped Accelerate/DeepSpeed configs, and ``check_distributed_setup``'s refusals.

The launched script is tests/distributed_scripts/train_tiny_lm.py: a tiny zoo GPT-2 (seeded) on fixed
data read in order (``train_sampling_strategy="sequential"``), so one process with batch 4 and two with
batch 2 each see the same global batch at every step. Every rank writes its logged losses to JSON.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import transformers
import yaml
from transformers import AutoModelForCausalLM, TrainingArguments

import trainers
import zoo
from trainers import distributed
from trainers.distributed import (
    DeepSpeedUnavailableError,
    DistributedSetupError,
    FsdpUnavailableError,
    check_distributed_setup,
    config_path,
    fsdp_transformer_layer_classes,
)
from zoo.errors import UnknownNameError

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "distributed_scripts" / "train_tiny_lm.py"
HAS_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None
needs_deepspeed = pytest.mark.skipif(
    not HAS_DEEPSPEED, reason=f"deepspeed missing: {distributed.DEEPSPEED_INSTALL}"
)
YAMLS = ["ddp", "fsdp2", "deepspeed_zero2", "deepspeed_zero3", "deepspeed_zero3_offload"]
JSONS = {"ds_zero2": (2, None, None), "ds_zero3": (3, None, None), "ds_zero3_offload": (3, "cpu", "cpu")}


# -- launching ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(tmp_path: Path, tag: str, *script_args: str, processes: int = 1, launcher: str = "torchrun"):
    """Run the training script; return (per-rank results, seconds). Fails with the output's tail."""
    out = tmp_path / tag
    if processes == 1:
        command = [sys.executable, str(SCRIPT)]
    elif launcher == "torchrun":
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}"]
        command += ["--master_addr=127.0.0.1", f"--master_port={free_port()}", str(SCRIPT)]
    else:  # accelerate launch with a shipped config
        command = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(config_path(launcher)),
        ]
        command += [f"--num_processes={processes}", f"--main_process_port={free_port()}", str(SCRIPT)]
    command += ["--out", str(out), *script_args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=540)
    seconds = time.perf_counter() - start
    assert run.returncode == 0, f"{' '.join(command)} failed:\n{(run.stdout + run.stderr)[-6000:]}"
    results = [json.loads((tmp_path / f"{tag}.rank{rank}.json").read_text()) for rank in range(processes)]
    return results, seconds


def training_script():
    """The launched script as a module (its model and probe batch)."""
    spec = importlib.util.spec_from_file_location("train_tiny_lm", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN = ("--steps", "10", "--lr", "1e-2")  # every run: 10 steps at a constant lr 1e-2


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    """One process, batch 4: the reference for every two-process run (global batch 4)."""
    results, seconds = launch(tmp_path_factory.mktemp("single"), "single", "--batch", "4", *RUN)
    print(f"single process {seconds:.1f}s")
    return results[0]


@pytest.fixture(scope="module")
def ddp_torchrun(tmp_path_factory):
    """torchrun, 2 gloo processes, batch 2 each, Trainer(use_cpu=True)."""
    results, seconds = launch(tmp_path_factory.mktemp("ddp"), "ddp", "--batch", "2", *RUN, processes=2)
    print(f"torchrun DDP {seconds:.1f}s")
    return results


# -- shipped configs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", YAMLS)
def test_accelerate_configs_parse_with_the_keys_accelerate_needs(name):
    from accelerate.commands.config.config_args import load_config_from_file

    path = config_path(name)
    config = yaml.safe_load(path.read_text())
    assert {"distributed_type", "num_processes", "num_machines", "mixed_precision"} <= set(config)
    assert config["num_processes"] == 2 and config["num_machines"] == 1
    loaded = load_config_from_file(str(path))  # Accelerate's own reader accepts every key
    assert loaded.distributed_type.value == config["distributed_type"]
    if name == "ddp":
        assert config["distributed_type"] == "MULTI_GPU" and "fsdp_config" not in config
    elif name == "fsdp2":
        fsdp = config["fsdp_config"]
        assert config["distributed_type"] == "FSDP" and fsdp["fsdp_version"] == 2
        assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
        assert "fsdp_transformer_layer_cls_to_wrap" not in fsdp  # so Accelerate reads _no_split_modules
        assert fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    else:
        assert config["distributed_type"] == "DEEPSPEED"
        deepspeed = config["deepspeed_config"]
        if name == "deepspeed_zero3_offload":
            json_path = REPO / deepspeed["deepspeed_config_file"]
            assert json_path == config_path("ds_zero3_offload")
            assert set(deepspeed) == {"deepspeed_config_file", "zero3_init_flag"}  # Accelerate allows no more
        else:
            stage = int(name[-1])
            assert deepspeed["zero_stage"] == stage
            assert deepspeed["offload_optimizer_device"] == deepspeed["offload_param_device"] == "none"
            assert deepspeed["zero3_init_flag"] is (stage == 3)
            assert deepspeed.get("zero3_save_16bit_model", False) is (stage == 3)


@pytest.mark.parametrize("name", sorted(JSONS))
def test_deepspeed_jsons_set_stage_offload_and_leave_batch_sizes_to_the_trainer(name):
    config = json.loads(config_path(name).read_text())
    stage, offload_optimizer, offload_param = JSONS[name]
    zero = config["zero_optimization"]
    assert zero["stage"] == stage
    assert zero["offload_optimizer"]["device"] == (offload_optimizer or "none")
    assert zero.get("offload_param", {"device": "none"})["device"] == (offload_param or "none")
    for key in ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps"):
        assert config[key] == "auto", key
    assert config["bf16"]["enabled"] == config["fp16"]["enabled"] == "auto"
    if stage == 3:
        assert zero["stage3_gather_16bit_weights_on_model_save"] is True
    # ZeRO-Offload refuses a Trainer-made optimizer; the offload config names DeepSpeed's (CPU) AdamW.
    assert ("optimizer" in config) == bool(offload_optimizer)
    args = TrainingArguments(
        str(REPO / "unused"), deepspeed=str(config_path(name)), use_cpu=True, report_to=[]
    )
    plan = check_distributed_setup(args) if HAS_DEEPSPEED else None
    if plan is not None:
        assert (plan.kind, plan.zero_stage, plan.offload_optimizer, plan.offload_param) == (
            "deepspeed", stage, offload_optimizer, offload_param,
        )  # fmt: skip


def test_config_path_names_and_unknown_name():
    assert config_path("fsdp2") == config_path("fsdp2.yaml") == distributed.CONFIG_DIR / "fsdp2.yaml"
    assert config_path("ds_zero3").name == "ds_zero3.json"
    assert set(distributed.config_names()) == set(YAMLS) | set(JSONS)
    with pytest.raises(UnknownNameError, match=r"unknown distributed config 'fsdp'.*did you mean 'fsdp2'"):
        config_path("fsdp")
    with pytest.raises(UnknownNameError, match="valid: ddp, deepspeed_zero2"):
        config_path("ds_zero3.yaml")  # the JSON exists, the YAML does not


def test_configs_are_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = package_data["trainers"]
    shipped = {path.name for path in distributed.CONFIG_DIR.iterdir()}
    covered = {name for name in shipped if any(Path(name).match(p.split("/")[-1]) for p in patterns)}
    assert all(p.startswith("configs/") for p in patterns) and covered == shipped and len(shipped) == 8


# -- FSDP ---------------------------------------------------------------------------------------------
def tiny_gpt2() -> zoo.GPT2ForCausalLM:
    config = zoo.GPT2Config(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=16, bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )  # fmt: skip
    return zoo.GPT2ForCausalLM(config)


def test_fsdp_transformer_layer_classes_come_from_no_split_modules():
    model = tiny_gpt2()
    assert fsdp_transformer_layer_classes(model) == ["PreNormDecoderBlock"]
    blocks = [m for m in model.modules() if type(m).__name__ == "PreNormDecoderBlock"]
    assert len(blocks) == 2  # one FSDP unit per layer
    bert = zoo.BertForMaskedLM(zoo.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1,
                                              num_attention_heads=4, intermediate_size=64))  # fmt: skip
    assert fsdp_transformer_layer_classes(bert) == ["PostNormEncoderBlock"]
    with pytest.raises(DistributedSetupError, match="declares no _no_split_modules"):
        fsdp_transformer_layer_classes(torch.nn.Linear(2, 2))


FSDP_REFUSAL = [
    "FSDP was requested",
    "use_cpu=True",
    "silently falls back to plain DDP",
    "trainers/configs/fsdp2.yaml",
    "backend='fsdp2'",
    "fully_shard",
]


def test_fsdp_through_trainer_is_refused_on_cpu():
    args = TrainingArguments(
        str(REPO / "unused"), fsdp=True, fsdp_config={"version": 2}, use_cpu=True, report_to=[]
    )
    with pytest.raises(FsdpUnavailableError) as refusal:
        check_distributed_setup(args, tiny_gpt2())
    for phrase in FSDP_REFUSAL:
        assert phrase in str(refusal.value), phrase
    # build_trainer runs the same check before touching data or tokenizer.
    with pytest.raises(FsdpUnavailableError, match="silently falls back to plain DDP"):
        trainers.build_trainer("lm", tiny_gpt2(), None, args)


def test_fsdp_from_accelerate_launch_environment_is_refused_without_gpu(monkeypatch):
    monkeypatch.setenv(
        "ACCELERATE_USE_FSDP", "true"
    )  # what `accelerate launch --config_file fsdp2.yaml` sets
    args = TrainingArguments(str(REPO / "unused"), use_cpu=True, report_to=[])
    with pytest.raises(FsdpUnavailableError, match="FSDP2 silently falls back to plain DDP"):
        check_distributed_setup(args)


def test_multiprocess_cpu_run_without_use_cpu_is_refused(monkeypatch):
    args = TrainingArguments(str(REPO / "unused"), report_to=[])
    cpu_args = TrainingArguments(str(REPO / "unused"), use_cpu=True, report_to=[])
    assert check_distributed_setup(args).kind == "single"
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it
    with pytest.raises(
        DistributedSetupError, match=r"2 processes.*every process trains its own copy.*use_cpu=True"
    ):
        check_distributed_setup(args)
    plan = check_distributed_setup(cpu_args)
    assert (plan.kind, plan.world_size) == ("ddp", 2)


# -- DeepSpeed set-up errors ----------------------------------------------------------------------------
def test_deepspeed_not_installed_names_the_install_command(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        distributed.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "deepspeed" else real_find_spec(name, *a),
    )
    args = TrainingArguments(str(REPO / "unused"), use_cpu=True, report_to=[])
    args.deepspeed = str(config_path("ds_zero2"))  # set after __post_init__, which would import deepspeed
    with pytest.raises(
        DeepSpeedUnavailableError, match=r'deepspeed is not installed.*pip install "zoo-models\[deepspeed\]"'
    ):
        check_distributed_setup(args)


@needs_deepspeed
def test_deepspeed_without_a_compiler_names_the_fix(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(distributed.shutil, "which", lambda name: None)
    args = TrainingArguments(str(REPO / "unused"), use_cpu=True, report_to=[])
    args.deepspeed = str(config_path("ds_zero3_offload"))
    with pytest.raises(DeepSpeedUnavailableError) as refusal:
        check_distributed_setup(args)
    message = str(refusal.value)
    for phrase in ("ZeRO stage 3", "DeepSpeedCPUAdam", "a C++ compiler (c++/g++)", "apt-get install g++",
                   "DS_BUILD_CPU_ADAM=1", "ds_zero3.json"):  # fmt: skip
        assert phrase in message, phrase


# -- runs ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ddp_two_processes_match_one_process_with_the_same_global_batch(ddp_torchrun, single_process):
    """DDP over gloo (2 x batch 2) against one process (batch 4): the logged loss is the mean over ranks,
    identical on both ranks, and equal to the single-process loss up to float32 summation order. Adam
    divides by sqrt(v), so tiny gradient differences are not damped; observed differences stay ~2e-6
    over 10 steps, so the first 6 steps are held to 1e-5 and all 10 to 1e-4."""
    for rank, result in enumerate(ddp_torchrun):
        assert (result["rank"], result["world_size"], result["backend"]) == (rank, 2, "gloo")
        assert result["distributed_type"] == "DistributedType.MULTI_CPU" and result["steps"] == 10
    losses = ddp_torchrun[0]["losses"]
    assert losses == ddp_torchrun[1]["losses"]  # all-reduced: bit-identical on both ranks
    assert ddp_torchrun[0]["param_sum_squares"] == ddp_torchrun[1]["param_sum_squares"]  # replicas in sync
    reference = single_process["losses"]
    assert single_process["world_size"] == 1 and len(reference) == len(losses) == 10
    assert losses[:6] == pytest.approx(reference[:6], abs=1e-5, rel=0)
    assert losses == pytest.approx(reference, abs=1e-4, rel=0)
    assert losses[-1] < losses[0] - 1.0  # it learns: 4.18 -> 2.74
    assert ddp_torchrun[0]["param_sum_squares"] == pytest.approx(
        single_process["param_sum_squares"], rel=1e-5
    )


@pytest.mark.slow
def test_accelerate_launch_with_the_shipped_ddp_config_runs_two_gloo_processes(tmp_path, ddp_torchrun):
    """`accelerate launch --config_file ddp.yaml` on a GPU-less machine: MULTI_CPU over gloo, and the
    same numbers as torchrun (the same processes, started by another launcher)."""
    ranks, seconds = launch(tmp_path, "acc", "--batch", "2", *RUN, processes=2, launcher="ddp")
    print(f"accelerate launch DDP {seconds:.1f}s")
    assert [r["world_size"] for r in ranks] == [2, 2] and ranks[0]["backend"] == "gloo"
    assert ranks[0]["distributed_type"] == "DistributedType.MULTI_CPU"
    assert (
        ranks[0]["losses"] == ranks[1]["losses"] == pytest.approx(ddp_torchrun[0]["losses"], abs=1e-6, rel=0)
    )


@pytest.mark.slow
@needs_deepspeed
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_trains_through_trainer_on_cpu(stage, tmp_path, single_process):
    """ZeRO-2/3 under torchrun with gloo (DeepSpeed's CPU accelerator). The loss falls over 10 steps and
    follows the single-process run with the same global batch; ZeRO-3 really partitions the parameters,
    and its saved checkpoint reloads with the gathered weights' logits."""
    save_dir = tmp_path / "saved"
    ranks, seconds = launch(
        tmp_path, f"zero{stage}", "--batch", "2", *RUN,
        "--deepspeed", str(config_path(f"ds_zero{stage}")), "--save-dir", str(save_dir), processes=2,
    )  # fmt: skip
    print(f"DeepSpeed ZeRO-{stage} torchrun run: {seconds:.1f}s (includes a first-time op build if any)")
    for rank, result in enumerate(ranks):
        assert (result["rank"], result["world_size"], result["zero_stage"]) == (rank, 2, stage)
        assert result["distributed_type"] == "DistributedType.DEEPSPEED" and result["backend"] == "gloo"
    losses = ranks[0]["losses"]
    assert losses == ranks[1]["losses"] and len(losses) == 10
    assert losses[-1] < losses[0] - 1.0  # 4.18 -> 2.74 on this data
    # Same data, same global batch, Trainer's AdamW: DeepSpeed changes where things live, not the numbers
    # (float32 reduction order only: observed differences ~2e-6).
    assert losses == pytest.approx(single_process["losses"], abs=1e-4, rel=0)

    if stage == 2:  # parameters stay replicated; only optimizer state and gradients are sharded
        assert ranks[0]["param_sum_squares"] == ranks[1]["param_sum_squares"]
        assert ranks[0]["param_sum_squares"] == pytest.approx(single_process["param_sum_squares"], rel=1e-4)
        return

    total = sum(p["ds_numel"] for p in ranks[0]["partitions"])
    script = training_script()
    assert total == sum(p.numel() for p in script.tiny_model().parameters())
    for result in ranks:
        partitions = result["partitions"]
        for p in partitions:
            assert p["local_numel"] == -(-p["ds_numel"] // 2), p  # each rank holds ceil(n / 2)
            if p["ds_numel"] >= 1000:  # large ones are released outside forward/backward
                assert p["visible_numel"] == 0, p
        local = sum(p["local_numel"] for p in partitions)
        assert total / 2 <= local <= total / 2 + len(partitions)

    # the gathered ZeRO-3 save is a transformers-layout checkpoint: both libraries load it
    gathered = torch.load(tmp_path / f"zero{stage}.logits.pt")
    for reloaded, expected_class in (
        (zoo.load(save_dir), zoo.GPT2ForCausalLM),
        (AutoModelForCausalLM.from_pretrained(save_dir), transformers.GPT2LMHeadModel),
    ):
        assert type(reloaded) is expected_class
        with torch.no_grad():
            logits = reloaded.eval()(script.probe_inputs()).logits
        assert logits.shape == gathered.shape == (2, 8, 64)
        torch.testing.assert_close(logits, gathered, rtol=0, atol=1e-5)
