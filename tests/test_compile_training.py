"""Whole-graph compile in training (``trainers.compile``): ``ZooTrainer`` with ``torch_compile=True`` and
``ModelInterface(compile=...)`` compile with ``fullgraph=True``, train to the eager numbers, compile one
graph for one input shape (no recompiles across steps), report compile time apart from step time, and
name the model and options when compiling fails.

Compiling on 2 CPU cores costs seconds per graph, so the runs use dynamo's ``aot_eager`` backend (the
same captured forward and backward graphs, run eagerly; inductor's code generation is exercised by
tests/test_graphs.py and the benchmark).
"""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from torch import nn
from transformers import PreTrainedModel, TrainingArguments

import zoo
from auto_loader import ModelBundle
from trainers.compile import CompileError, compile_errors
from trainers.interface import ModelInterface
from trainers.task_trainer import ZooTrainer

VOCAB, LENGTH, ROWS = 128, 16, 8


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def tiny_llama(seed: int = 0) -> zoo.LlamaForCausalLM:
    torch.manual_seed(seed)
    config = zoo.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4
    )
    return zoo.LlamaForCausalLM(config)


def dataset() -> Dataset:
    ids = torch.randint(VOCAB, (ROWS, LENGTH), generator=torch.Generator().manual_seed(1))
    return Dataset.from_dict({"input_ids": ids.tolist(), "labels": ids.tolist()})


def arguments(tmp_path, **options) -> TrainingArguments:
    return TrainingArguments(
        str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
        **options,
    )


def losses(trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def test_zoo_trainer_compiles_the_whole_model_once_and_trains_to_the_eager_numbers(tmp_path):
    eager = ZooTrainer(model=tiny_llama(), args=arguments(tmp_path / "eager"), train_dataset=dataset())
    eager.train()
    compiled = ZooTrainer(
        model=tiny_llama(),
        args=arguments(tmp_path / "compiled", torch_compile=True, torch_compile_backend="aot_eager"),
        train_dataset=dataset(),
    )
    assert compiled.accelerator.state.dynamo_plugin.fullgraph is True
    metrics = compiled.train().metrics

    assert losses(compiled) == pytest.approx(losses(eager), rel=1e-5)
    for ours, theirs in zip(compiled.model.parameters(), eager.model.parameters()):
        assert (ours - theirs).abs().max().item() <= 1e-5
    # one input shape: one graph, compiled in the first step only
    assert metrics["train_compiled_graphs"] == 1
    assert metrics["train_compile_seconds"] > metrics["train_step_seconds"] > 0


class Breaks(PreTrainedModel):
    """A model whose forward has a graph break: fullgraph=True must refuse it."""

    config_class = zoo.LlamaConfig
    _supports_sdpa = True

    def __init__(self, config):
        super().__init__(config)
        self.linear = nn.Linear(4, 4)

    def forward(self, input_ids=None, labels=None, **kwargs):
        hidden = self.linear(torch.ones(1, 4))
        torch._dynamo.graph_break()
        return {"loss": hidden.sum()}


def test_a_graph_break_is_an_error_naming_the_model_and_options_not_a_silent_fallback(tmp_path):
    model = Breaks(tiny_llama().config)
    trainer = ZooTrainer(
        model=model,
        args=arguments(tmp_path, torch_compile=True, torch_compile_backend="aot_eager"),
        train_dataset=dataset(),
    )
    with pytest.raises(
        CompileError,
        match=r"torch\.compile\(fullgraph=True, backend='aot_eager'.*failed on family 'llama' \(Breaks\): Unsupported",
    ):
        trainer.train()


def test_compile_errors_names_the_family():
    expected = r"failed on family 'llama' \(LlamaForCausalLM\): Unsupported"
    with pytest.raises(CompileError, match=expected), compile_errors(tiny_llama(), {"fullgraph": True}):
        raise torch._dynamo.exc.Unsupported("a graph break")


def interface(compile) -> ModelInterface:
    model = tiny_llama()
    bundle = ModelBundle(name="tiny-llama", module=model, tokenizer=None, device=torch.device("cpu"))
    return ModelInterface(bundle, lr=1e-3, compile=compile)


def test_model_interface_compiles_train_steps_to_the_eager_numbers():
    ids = torch.tensor(dataset()["input_ids"])
    batches = [{"input_ids": rows, "labels": rows} for rows in ids.split(2)]
    eager, compiled = interface(False), interface("aot_eager")
    eager_losses = [eager.train_step(batch)["loss"].item() for batch in batches]
    compiled_losses = [compiled.train_step(batch)["loss"].item() for batch in batches]
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-5)
    assert compiled._train_forward is not compiled.module
