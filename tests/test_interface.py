"""ModelInterface over its backends, ModelBackend set-up, and ``model.criterion`` in a plain PyTorch loop.

The distributed checks run tests/distributed_scripts/{fsdp2_shard,interface_deepspeed}.py under torchrun
with 2 CPU processes (gloo) and compare with the single-process run of the same model and batch here.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_models import bpe_tokenizer, tiny_pretrained_model, tokenizer_for
from torch.utils.data import DataLoader

import zoo
from auto_loader import ModelBundle
from tasks.heads import head_class
from trainers.backend import BackendError, backend_names, free_port, initialize
from trainers.interface import InterfaceError, ModelInterface
from zoo.errors import UnknownNameError

SCRIPTS = Path(__file__).parent / "distributed_scripts"
sys.path.insert(0, str(SCRIPTS))
from interface_common import LR, STEPS, training_batch  # noqa: E402

CPU = torch.device("cpu")


def tiny_bundle(family: str = "gpt2") -> ModelBundle:
    tokenizer = tokenizer_for(family)
    return ModelBundle(family, tiny_pretrained_model(family, tokenizer), tokenizer, CPU)


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    return training_batch(len(bpe_tokenizer()))


def is_cpu_tensor(value) -> bool:
    return isinstance(value, torch.Tensor) and value.device.type == "cpu"


# -- ModelInterface on one process ---------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["plain", "accelerate"])
def test_train_step_lowers_the_loss_and_returns_cpu_tensors(backend, batch):
    interface = ModelInterface(tiny_bundle(), lr=LR, backend=backend)
    steps = [interface.train_step(batch) for _ in range(15)]
    losses = [s["loss"].item() for s in steps]
    assert all(set(s) == {"loss", "grad_norm", "lr"} and all(map(is_cpu_tensor, s.values())) for s in steps)
    assert losses[0] == pytest.approx(5.7007, abs=1e-3)  # ln(300) = 5.70: a random tiny model
    assert losses[-1] < 0.75 * losses[0]
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert steps[0]["grad_norm"].item() == pytest.approx(1.9567, abs=1e-3)
    assert steps[0]["lr"].item() == pytest.approx(LR)


def test_plain_and_accelerate_take_identical_steps(batch):
    runs = [ModelInterface(tiny_bundle(), lr=LR, backend=name) for name in ("plain", "accelerate")]
    losses = [[run.train_step(batch)["loss"].item() for _ in range(STEPS)] for run in runs]
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)


def test_gradient_clipping_and_scheduler(batch):
    interface = ModelInterface(
        tiny_bundle(),
        lr=1.0,
        optimizer=lambda params: torch.optim.SGD(params, lr=1.0),
        max_grad_norm=0.5,
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5**step),
    )
    before = {n: p.detach().clone() for n, p in interface.model.named_parameters()}
    first = interface.train_step(batch)
    moved = torch.cat([(p.detach() - before[n]).flatten() for n, p in interface.model.named_parameters()])
    assert first["grad_norm"].item() > 0.5
    assert moved.norm().item() == pytest.approx(0.5, rel=1e-4)  # SGD with lr 1 moves by the clipped gradient
    assert [first["lr"].item(), interface.train_step(batch)["lr"].item()] == [1.0, 0.5]


def test_train_step_with_a_custom_loss_function(batch):
    interface = ModelInterface(tiny_bundle(), lr=LR)
    rewards = torch.tensor([1.0, -1.0, 0.5, 0.0])
    reference = tiny_bundle().module.eval()
    logits = reference(input_ids=batch["input_ids"]).logits
    logp = logits[:, :-1].log_softmax(-1).gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)
    expected = -(logp.sum(-1) * rewards).mean()

    def policy_loss(outputs, device_batch):
        assert "rewards" not in inspect.signature(type(interface.model).forward).parameters
        logp = outputs.logits[:, :-1].log_softmax(-1).gather(-1, device_batch["input_ids"][:, 1:, None])
        return -(logp.squeeze(-1).sum(-1) * device_batch["rewards"]).mean()

    step = interface.train_step({**batch, "rewards": rewards}, loss_fn=policy_loss)
    assert step["loss"].item() == pytest.approx(expected.item(), abs=1e-5)


def test_train_step_without_labels_names_the_fix(batch):
    interface = ModelInterface(tiny_bundle())
    with pytest.raises(InterfaceError, match="add labels to the batch or pass loss_fn"):
        interface.train_step({"input_ids": batch["input_ids"]})
    with pytest.raises(InterfaceError, match=r"batch\['labels'\] is a list"):
        interface.train_step({"input_ids": batch["input_ids"], "labels": [1, 2]})


def test_evaluate_averages_over_target_tokens(batch):
    interface = ModelInterface(tiny_bundle())
    model = interface.model.train()
    padded = {k: v[2:].clone() for k, v in batch.items()}
    padded["labels"][:, 7:] = -100
    batches = [{k: v[:2] for k, v in batch.items()}, padded]
    result = interface.evaluate(batches)
    with torch.no_grad():  # the token mean over both batches: sum of token losses / count
        sums = [model.criterion(model(**b).logits, b["labels"], num_items_in_batch=1) for b in batches]
    targets = 2 * 11 + 2 * 6  # causal shift: 11 targets in a full row of 12, 6 in a row labelled up to 7
    assert result["num_target_tokens"].item() == targets
    assert result["num_examples"].item() == 4 and result["num_batches"].item() == 2
    assert result["loss"].item() == pytest.approx((sum(sums) / targets).item(), abs=1e-6)
    assert all(map(is_cpu_tensor, result.values()))
    assert interface.module.training  # evaluate puts back the mode it found


def test_evaluate_weights_sequence_labels_by_example():
    tokenizer = tokenizer_for("bert")
    config = tiny_pretrained_model("bert", tokenizer).config
    config.num_labels = 3
    interface = ModelInterface(
        ModelBundle("cls", head_class("bert", "sequence-classification")(config), tokenizer, CPU)
    )
    ids = torch.randint(5, 40, (5, 6), generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 1, 0])
    parts = [{"input_ids": ids[:2], "labels": labels[:2]}, {"input_ids": ids[2:], "labels": labels[2:]}]
    whole = interface.inference({"input_ids": ids, "labels": labels})["loss"]
    result = interface.evaluate(parts)
    assert result["num_examples"].item() == 5 and result["num_target_tokens"].item() == 0
    assert result["loss"].item() == pytest.approx(whole.item(), abs=1e-6)


def test_inference_and_generate_shapes(batch):
    interface = ModelInterface(tiny_bundle())
    outputs = interface.inference({"input_ids": batch["input_ids"]}, output_hidden_states=True)
    assert outputs["logits"].shape == (4, 12, 300) and is_cpu_tensor(outputs["logits"])
    assert "loss" not in outputs and "cache" not in outputs
    assert len(outputs["hidden_states"]) == 3 and outputs["hidden_states"][0].shape == (4, 12, 32)
    prompt = {"input_ids": batch["input_ids"][:2, :5], "attention_mask": torch.ones(2, 5, dtype=torch.long)}
    generated = interface.generate(prompt, max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert generated["sequences"].shape == (2, 9) and is_cpu_tensor(generated["sequences"])
    assert torch.equal(generated["sequences"][:, :5], prompt["input_ids"])
    direct = interface.model.generate(**prompt, max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert torch.equal(generated["sequences"], direct)
    scored = interface.generate(
        prompt,
        max_new_tokens=4,
        do_sample=False,
        pad_token_id=0,
        return_dict_in_generate=True,
        output_scores=True,
    )
    assert torch.equal(scored["sequences"], direct) and len(scored["scores"]) == 4


def test_seq2seq_generate_and_evaluate():
    interface = ModelInterface(tiny_bundle("t5"))
    ids = torch.randint(5, 40, (2, 6), generator=torch.Generator().manual_seed(0))
    generated = interface.generate({"input_ids": ids}, max_new_tokens=3, do_sample=False)
    assert generated["sequences"].shape == (2, 4)  # the decoder start token, then 3 new tokens
    labels = torch.tensor([[7, 8, 9, -100], [10, 11, 12, 13]])
    result = interface.evaluate([{"input_ids": ids, "labels": labels}])
    assert result["num_target_tokens"].item() == 7  # no shift: labels align with decoder positions


@pytest.mark.parametrize("backend", ["plain", "accelerate"])
def test_save_then_from_pretrained_gives_identical_logits(backend, batch, tmp_path):
    interface = ModelInterface(tiny_bundle(), lr=LR, backend=backend)
    interface.train_step(batch)
    directory = interface.save(tmp_path / "saved")
    reloaded = zoo.GPT2ForCausalLM.from_pretrained(directory)
    expected = interface.inference({"input_ids": batch["input_ids"]})["logits"]
    assert torch.equal(reloaded(input_ids=batch["input_ids"]).logits, expected)
    assert zoo.load_tokenizer(directory).get_vocab() == interface.bundle.tokenizer.get_vocab()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]  # no staging directory left behind
    assert oct(directory.stat().st_mode & 0o777) == "0o755"


def test_interrupted_save_keeps_the_previous_save(batch, tmp_path, monkeypatch):
    interface = ModelInterface(tiny_bundle(), lr=LR)
    directory = interface.save(tmp_path / "saved")
    first_logits = interface.inference({"input_ids": batch["input_ids"]})["logits"]
    interface.train_step(batch)
    model = interface.model
    original = type(model).save_pretrained

    def crash_half_way(self, save_directory, **kwargs):
        original(self, save_directory, **kwargs)  # the weights are written, then the save dies
        (Path(save_directory) / "config.json").write_text("{trunc")
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(type(model), "save_pretrained", crash_half_way)
    with pytest.raises(KeyboardInterrupt):
        interface.save(directory)
    monkeypatch.undo()
    reloaded = zoo.GPT2ForCausalLM.from_pretrained(directory)
    assert torch.equal(reloaded(input_ids=batch["input_ids"]).logits, first_logits)
    assert not torch.equal(interface.inference({"input_ids": batch["input_ids"]})["logits"], first_logits)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]
    interface.save(directory)  # and the next save replaces it
    assert torch.equal(
        zoo.GPT2ForCausalLM.from_pretrained(directory)(input_ids=batch["input_ids"]).logits,
        interface.inference({"input_ids": batch["input_ids"]})["logits"],
    )


# -- ModelBackend ------------------------------------------------------------------------------------
def test_initialize_returns_the_prepared_bundle_and_optimizer():
    bundle, optimizer = initialize(tiny_bundle(), "plain", lr=2e-3, weight_decay=0.1)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["lr"] == 2e-3 and optimizer.param_groups[0]["weight_decay"] == 0.1
    assert sum(p.numel() for p in optimizer.param_groups[0]["params"]) == bundle.module.get_num_params()
    assert backend_names() == ["plain", "accelerate", "deepspeed", "fsdp2"]


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="unknown model backend 'fsdp'; valid: .*fsdp2.*did you mean"):
        initialize(tiny_bundle(), "fsdp")


def test_fsdp2_refuses_an_optimizer_built_before_sharding():
    bundle = tiny_bundle()
    optimizer = torch.optim.AdamW(bundle.module.parameters())
    with pytest.raises(BackendError, match="pass a function of the parameters"):
        initialize(bundle, "fsdp2", optimizer)


def torchrun(script: str, *args: str, timeout: int = 300) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--master_port", str(free_port()), str(SCRIPTS / script), *args]
    root = Path(__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]


def single_process_losses(family: str) -> list[float]:
    interface = ModelInterface(tiny_bundle(family), lr=LR)
    batch = training_batch(300)
    return [interface.train_step(batch)["loss"].item() for _ in range(STEPS)]


def test_fsdp2_shards_trains_and_saves_the_full_model(tmp_path):
    families = ("llama", "gpt2")
    torchrun("fsdp2_shard.py", str(tmp_path / "out"), ",".join(families))
    for family in families:
        ranks = [json.loads((tmp_path / f"out.{family}.rank{r}.json").read_text()) for r in (0, 1)]
        assert [r["world_size"] for r in ranks] == [2, 2]
        shards = ranks[0]["shards"]
        full = dict(tiny_bundle(family).module.named_parameters())
        assert sorted(shards) == sorted(full)
        for name, shard in shards.items():
            assert shard["type"] == "DTensor" and shard["placements"] == ["S(0)"], name
            rows = shard["full_shape"][0]
            local = [r["shards"][name]["local_numel"] for r in ranks]
            assert sum(local) == full[name].numel(), name  # two halves make the whole
            assert local[0] == -(-rows // 2) * full[name].numel() // rows, name
        assert ranks[0]["losses"] == ranks[1]["losses"]
        assert ranks[0]["losses"] == pytest.approx(single_process_losses(family), abs=1e-5)
        assert ranks[0]["losses"][-1] < ranks[0]["losses"][0] - 0.3
        assert ranks[0]["logits_equal"] and ranks[0]["max_logit_difference"] == 0.0
        assert ranks[0]["tokenizer_saved"]


@pytest.mark.slow
@pytest.mark.parametrize("zero_stage", [2, 3])
def test_deepspeed_zero_through_the_interface(zero_stage, tmp_path):
    pytest.importorskip("deepspeed")
    torchrun("interface_deepspeed.py", str(tmp_path / "out"), str(zero_stage), timeout=500)
    ranks = [json.loads((tmp_path / f"out.rank{r}.json").read_text()) for r in (0, 1)]
    assert [(r["engine"], r["zero_stage"], r["world_size"]) for r in ranks] == [
        ("DeepSpeedEngine", zero_stage, 2)
    ] * 2
    assert ranks[0]["losses"] == ranks[1]["losses"]
    assert ranks[0]["losses"] == pytest.approx(single_process_losses("llama"), abs=1e-5)
    assert ranks[0]["logits_equal"] and ranks[0]["tokenizer_saved"]


# -- the Oumi seed: criterion and a plain PyTorch loop --------------------------------------------------
def criterion_case(kind: str):
    """(model, batch) for one model kind, with -100 in the labels."""
    family = {"gpt2": "gpt2", "llama": "llama", "bert-mlm": "bert", "t5": "t5"}.get(kind, kind.split("-")[0])
    tokenizer = tokenizer_for(family)
    model = tiny_pretrained_model(family, tokenizer)
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(5, 40, (3, 8), generator=generator)
    labels = ids.clone()
    labels[0, :3] = -100
    if kind.endswith("-seqcls") or kind.endswith("-tokcls"):
        config = model.config
        config.num_labels, config.pad_token_id = 3, 0
        model = head_class(
            family, "sequence-classification" if kind.endswith("seqcls") else "sequence-labeling"
        )(config)
        labels = (
            torch.tensor([0, 2, 1])
            if kind.endswith("seqcls")
            else torch.randint(0, 3, (3, 8), generator=generator)
        )
        if kind.endswith("tokcls"):
            labels[1, 5:] = -100
    if kind == "t5":
        labels = labels[:, :5]
    return model.eval(), {"input_ids": ids, "labels": labels}


CRITERION_KINDS = [
    "gpt2",
    "llama",
    "bert-mlm",
    "t5",
    "bert-seqcls",
    "gpt2-seqcls",
    "llama-tokcls",
    "t5-tokcls",
]
LOSS_TYPES = (
    ["ForCausalLM", "ForCausalLM", "ForMaskedLM", "ForMaskedLM"]
    + ["ForSequenceClassification"] * 2
    + ["ForTokenClassification"] * 2
)


@pytest.mark.parametrize(("kind", "loss_type"), zip(CRITERION_KINDS, LOSS_TYPES))
def test_criterion_is_the_forward_loss(kind, loss_type):
    model, batch = criterion_case(kind)
    outputs = model(**batch)
    assert model.criterion.loss_type == loss_type
    # (LM heads' forward computes the loss chunk by chunk, zoo.fused_loss: equal to fp32 rounding)
    loss = outputs.loss.item()
    assert model.criterion(outputs.logits, batch["labels"]).item() == pytest.approx(loss, rel=1e-6)
    if loss_type != "ForSequenceClassification":  # the Trainer's exact gradient-accumulation form too
        summed = model(**batch, num_items_in_batch=7).loss.item()
        criterion = model.criterion(outputs.logits, batch["labels"], num_items_in_batch=7).item()
        assert criterion == pytest.approx(summed, rel=1e-6)


def test_criterion_of_glm_unilm_and_crf_is_the_forward_loss():
    from tasks import get_task

    torch.manual_seed(0)
    wordpiece = tokenizer_for("bert")
    cases = []
    glm = tiny_pretrained_model("glm", tokenizer_for("glm")).eval()
    task = get_task("seq2seq")
    pair = [
        {"source": "the cat sat", "target": "cat mat"},
        {"source": "john lives in paris", "target": "paris"},
    ]
    cases.append((glm, task.collator(wordpiece, glm)(list(task.preprocess(pair, wordpiece, glm)))))
    unilm = head_class("bert", "seq2seq")(tiny_pretrained_model("bert", wordpiece).config).eval()
    cases.append((unilm, task.collator(wordpiece, unilm)(list(task.preprocess(pair, wordpiece, unilm)))))
    config = tiny_pretrained_model("bert", wordpiece).config
    config.num_labels = 3
    crf = head_class("bert", "sequence-labeling-crf")(config).eval()
    ids = torch.randint(10, 40, (2, 6))
    labels = torch.tensor([[-100, 0, 1, 2, -100, -100], [-100, 2, -100, 1, 0, -100]])
    cases.append((crf, {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}))
    for model, batch in cases:
        with torch.no_grad():
            outputs = model(**batch)
            extra = {"attention_mask": batch["attention_mask"]} if model is crf else {}
            loss = model.criterion(outputs.logits, batch["labels"], **extra)
        assert outputs.loss.item() > 0 and abs(loss.item() - outputs.loss.item()) < 1e-6, type(model).__name__


def test_plain_dataloader_loop_lowers_the_loss():
    torch.manual_seed(0)
    model = tiny_pretrained_model("llama", bpe_tokenizer())
    generator = torch.Generator().manual_seed(5)
    dataset = [
        {"input_ids": row, "labels": row} for row in torch.randint(3, 300, (8, 10), generator=generator)
    ]
    loader = DataLoader(dataset, batch_size=4, shuffle=True, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    epoch_losses = []
    for _ in range(15):
        losses = []
        for batch in loader:
            outputs = model(**batch)
            criterion = model.criterion(outputs.logits, batch["labels"]).item()
            assert criterion == pytest.approx(outputs.loss.item(), rel=1e-6)
            outputs.loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(outputs.loss.item())
        epoch_losses.append(sum(losses) / len(losses))
    assert epoch_losses[0] == pytest.approx(5.70, abs=0.05)
    assert epoch_losses[-1] < 0.3 * epoch_losses[0]  # 5.73 -> 0.73 on these 8 rows
