"""PEFT adapters cross between transformers' classes and the zoo's, exactly, both ways.

An adapter trained with PEFT on transformers' BERT, GPT-2, Llama, Mistral or Qwen2 (separate q/k/v,
or GPT-2's Conv1D ``c_attn``) loads into the zoo class with logits equal to transformers + adapter;
one trained on the zoo class saves under transformers' names and PEFT on plain transformers loads
it with the zoo's logits. Fusing separate q/k/v adapters into ``attn.qkv`` and splitting them back
gives the very tensors that went in. ``LoraConfig(task_type=...)`` and ``IA3Config()`` need no
``target_modules`` on any zoo model. Adapters that cannot cross exactly raise, naming why.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from peft import IA3Config, LoHaConfig, LoraConfig, PeftModel, TaskType, get_peft_model
from safetensors.torch import load_file

import zoo
from zoo.adapters import AdapterConversionError, load_adapter, save_adapter

TINY = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
REFERENCES = {  # kind -> (transformers model, LoRA targets a transformers user would pick)
    "bert": (lambda: transformers.BertForMaskedLM(transformers.BertConfig(**TINY)), ["query", "value"]),
    "gpt2": (
        lambda: transformers.GPT2LMHeadModel(
            transformers.GPT2Config(vocab_size=97, n_embd=32, n_layer=2, n_head=4)
        ),
        ["c_attn", "c_proj"],
    ),
    "llama": (
        lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(**TINY, num_key_value_heads=2)),
        ["q_proj", "v_proj", "o_proj", "down_proj"],
    ),
    "mistral": (
        lambda: transformers.MistralForCausalLM(transformers.MistralConfig(**TINY, num_key_value_heads=2)),
        ["q_proj", "k_proj", "v_proj"],
    ),
    "qwen2": (
        lambda: transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**TINY, num_key_value_heads=2)),
        ["k_proj", "v_proj"],
    ),
}
INPUTS = torch.randint(3, 97, (2, 9), generator=torch.Generator().manual_seed(0))


def _randomize_adapter(model) -> None:
    """LoRA's B starts at zero, which would hide a wrong mapping: give every adapter tensor values."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name or "ia3_" in name:
                param.copy_(
                    torch.randn(param.shape, generator=generator) * 0.1 + (1.0 if "ia3_" in name else 0)
                )


def _reference_dir(kind: str, tmp_path):
    torch.manual_seed(0)
    reference = REFERENCES[kind][0]().eval()
    reference.save_pretrained(tmp_path / "base")
    return reference


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=INPUTS).logits


@pytest.mark.parametrize("kind", list(REFERENCES))
def test_transformers_adapter_loads_into_zoo_and_back(kind, tmp_path):
    reference = _reference_dir(kind, tmp_path)
    targets = REFERENCES[kind][1]
    # another rank for one target, with the same scaling alpha / r: the round trip is bit-exact
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=targets,
        rank_pattern={targets[-1]: 2},
        alpha_pattern={targets[-1]: 4},
    )
    peft_reference = get_peft_model(reference, config)
    _randomize_adapter(peft_reference)
    peft_reference.save_pretrained(tmp_path / "adapter")
    expected = _logits(peft_reference.eval())

    peft_zoo = load_adapter(zoo.load(tmp_path / "base"), tmp_path / "adapter")
    assert (_logits(peft_zoo) - expected).abs().max() <= 1e-5

    save_adapter(peft_zoo, tmp_path / "back")  # the transformers names, split exactly
    written = load_file(tmp_path / "back" / "adapter_model.safetensors")
    original = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert written.keys() == original.keys()
    for name, tensor in original.items():
        assert torch.equal(written[name], tensor), name
    back = PeftModel.from_pretrained(type(reference).from_pretrained(tmp_path / "base"), tmp_path / "back")
    assert torch.equal(_logits(back.eval()), expected)


def test_parts_with_other_scalings_fuse_exactly(tmp_path):
    """q at rank 4 and v at rank 2 with one alpha: the v block is rescaled into the fused scaling."""
    reference = _reference_dir("llama", tmp_path)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], rank_pattern={"v_proj": 2})
    peft_reference = get_peft_model(reference, config)
    _randomize_adapter(peft_reference)
    peft_reference.save_pretrained(tmp_path / "adapter")
    expected = _logits(peft_reference.eval())
    peft_zoo = load_adapter(zoo.load(tmp_path / "base"), tmp_path / "adapter")
    assert (_logits(peft_zoo) - expected).abs().max() <= 1e-5
    save_adapter(peft_zoo, tmp_path / "back")
    back = PeftModel.from_pretrained(
        transformers.LlamaForCausalLM.from_pretrained(tmp_path / "base"), tmp_path / "back"
    )
    assert (_logits(back.eval()) - expected).abs().max() <= 1e-5


@pytest.mark.parametrize("kind", list(REFERENCES))
def test_zoo_adapter_saves_under_transformers_names(kind, tmp_path):
    reference = _reference_dir(kind, tmp_path)
    peft_zoo = get_peft_model(zoo.load(tmp_path / "base"), LoraConfig(r=4, lora_alpha=16, use_rslora=True))
    _randomize_adapter(peft_zoo)
    expected = _logits(peft_zoo.eval())
    save_adapter(peft_zoo, tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert not any("qkv" in target for target in config["target_modules"]), config["target_modules"]
    plain = PeftModel.from_pretrained(
        type(reference).from_pretrained(tmp_path / "base"), tmp_path / "adapter"
    )
    assert (_logits(plain.eval()) - expected).abs().max() <= 1e-5
    again = load_adapter(zoo.load(tmp_path / "base"), tmp_path / "adapter")  # and back: rank kept at 4
    assert {p.shape[0] for n, p in again.named_parameters() if "lora_A" in n} == {4}
    assert torch.equal(_logits(again), expected)


def test_fused_lora_algebra_is_exact():
    """The two rules of ``zoo/adapters.py`` on raw tensors: block-diagonal fusion, row-split."""
    from zoo.adapters import _fuse, _split

    config = LoraConfig(r=4, lora_alpha=8, use_rslora=False)
    generator = torch.Generator().manual_seed(3)
    sizes = [8, 4, 4]  # q, k, v rows (grouped-query attention)
    parts = {
        0: {
            "lora_A.weight": torch.randn(4, 6, generator=generator),
            "lora_B.weight": torch.randn(8, 4, generator=generator),
        },
        2: {
            "lora_A.weight": torch.randn(2, 6, generator=generator),
            "lora_B.weight": torch.randn(4, 2, generator=generator),
        },
    }
    scalings = {0: 8 / 4, 2: 8 / 2}  # v has rank 2 and the same alpha: another scaling
    names = {0: "q_proj", 2: "v_proj"}
    fused, rank, alpha = _fuse(config, "attn.qkv", parts, sizes, names, {})
    delta = (alpha / rank) * fused["lora_B.weight"] @ fused["lora_A.weight"]
    expected = torch.cat(
        [
            scalings[0] * parts[0]["lora_B.weight"] @ parts[0]["lora_A.weight"],
            torch.zeros(4, 6),
            scalings[2] * parts[2]["lora_B.weight"] @ parts[2]["lora_A.weight"],
        ]
    )
    assert torch.allclose(delta, expected, atol=1e-6)
    split = _split(config, "attn.qkv", fused, sizes, rank, alpha)
    assert split[1] is None  # k was not targeted, and is not invented
    for position in (0, 2):
        tensors, part_rank, part_alpha = split[position]
        part_delta = (part_alpha / part_rank) * tensors["lora_B.weight"] @ tensors["lora_A.weight"]
        assert torch.allclose(
            part_delta, expected[sum(sizes[:position]) : sum(sizes[: position + 1])], atol=1e-6
        )
        assert torch.equal(tensors["lora_A.weight"], parts[position]["lora_A.weight"])


def _zoo_models():
    llama = zoo.LlamaConfig(**TINY, num_key_value_heads=2)
    yield "llama", zoo.LlamaForCausalLM(llama), TaskType.CAUSAL_LM
    yield "gpt2", zoo.GPT2ForCausalLM(zoo.GPT2Config(**TINY)), TaskType.CAUSAL_LM
    yield "bert", zoo.BertForMaskedLM(zoo.BertConfig(**TINY)), None
    yield "t5", zoo.T5ForConditionalGeneration(zoo.T5Config(**TINY)), TaskType.SEQ_2_SEQ_LM
    yield "glm", zoo.GLMForSeq2Seq(zoo.GLMConfig(**TINY, max_position_embeddings=32)), TaskType.CAUSAL_LM
    yield "gpt", zoo.GPT(zoo.GPTConfig(**TINY, max_position_embeddings=32)), TaskType.CAUSAL_LM


@pytest.mark.parametrize(
    ("name", "model", "task_type"), list(_zoo_models()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_peft_default_targets_on_every_zoo_model(name, model, task_type):
    lora = get_peft_model(model, LoraConfig(task_type=task_type) if task_type else LoraConfig())
    targeted = {n.rsplit(".lora_A", 1)[0] for n, _ in lora.named_parameters() if ".lora_A." in n}
    assert targeted and all(t.endswith(("attn.qkv", "cross_attn.q", "cross_attn.kv")) for t in targeted)
    assert lora.get_nb_trainable_parameters()[0] > 0
    base = lora.unload()
    ia3 = get_peft_model(base, IA3Config(task_type=task_type) if task_type else IA3Config())
    scaled = {n.rsplit(".ia3_l", 1)[0] for n, _ in ia3.named_parameters() if ".ia3_l" in n}
    assert any(s.endswith("mlp.down") for s in scaled) and any(s.endswith("attn.qkv") for s in scaled)


def test_ia3_from_transformers_llama_loads_exactly(tmp_path):
    reference = _reference_dir("llama", tmp_path)
    peft_reference = get_peft_model(reference, IA3Config(task_type=TaskType.CAUSAL_LM))  # k, v, down
    _randomize_adapter(peft_reference)
    peft_reference.save_pretrained(tmp_path / "adapter")
    peft_zoo = load_adapter(zoo.load(tmp_path / "base"), tmp_path / "adapter")
    assert (_logits(peft_zoo) - _logits(peft_reference.eval())).abs().max() <= 1e-5


def test_adapters_that_cannot_cross_exactly_say_why(tmp_path):
    reference = _reference_dir("llama", tmp_path)
    loha = get_peft_model(reference, LoHaConfig(r=2, target_modules=["q_proj"]))
    loha.save_pretrained(tmp_path / "loha")
    with pytest.raises(
        AdapterConversionError, match="q_proj.*fuses them into .*attn.qkv.*no exact fused form"
    ):
        load_adapter(zoo.load(tmp_path / "base"), tmp_path / "loha")

    gpt2 = _reference_dir("gpt2", tmp_path / "gpt2")
    foreign = get_peft_model(gpt2, LoraConfig(r=2, target_modules=["c_fc"]))
    foreign.save_pretrained(tmp_path / "foreign")
    with pytest.raises(AdapterConversionError, match=r"mlp\.c_fc.*no module in LlamaForCausalLM"):
        load_adapter(zoo.load(tmp_path / "base"), tmp_path / "foreign")

    dora = get_peft_model(zoo.load(tmp_path / "base"), LoraConfig(r=2, use_dora=True))
    with pytest.raises(AdapterConversionError, match="DoRA on the fused projection"):
        save_adapter(dora, tmp_path / "dora")
    save_adapter(dora, tmp_path / "dora", layout="zoo")  # the zoo's own names keep it exactly
    assert torch.equal(
        _logits(load_adapter(zoo.load(tmp_path / "base"), tmp_path / "dora")), _logits(dora.eval())
    )


def test_trainer_checkpoints_of_an_adapter_use_transformers_names_and_resume_exactly(tmp_path):
    from transformers import TrainingArguments

    from trainers.task_trainer import ZooTrainer

    _reference_dir("llama", tmp_path)
    generator = torch.Generator().manual_seed(3)
    rows = [{"input_ids": ids, "labels": ids} for ids in torch.randint(3, 97, (24, 8), generator=generator)]

    def run(output_dir, max_steps, resume=None):
        torch.manual_seed(0)
        model = get_peft_model(zoo.load(tmp_path / "base"), LoraConfig(r=4, task_type=TaskType.CAUSAL_LM))
        args = TrainingArguments(
            output_dir=str(output_dir), max_steps=max_steps, per_device_train_batch_size=4, learning_rate=1e-2,
            lr_scheduler_type="constant", logging_steps=1, save_steps=3, report_to=[], use_cpu=True,
            dataloader_pin_memory=False, seed=7, disable_tqdm=True,
        )  # fmt: skip
        trainer = ZooTrainer(model=model, args=args, train_dataset=rows)
        trainer.train(resume_from_checkpoint=resume)
        return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]

    uninterrupted = run(tmp_path / "full", 6)
    run(tmp_path / "cut", 3)
    checkpoint = tmp_path / "cut" / "checkpoint-3"
    targets = json.loads((checkpoint / "adapter_config.json").read_text())["target_modules"]
    assert targets == ["self_attn.k_proj", "self_attn.q_proj", "self_attn.v_proj"]
    PeftModel.from_pretrained(transformers.LlamaForCausalLM.from_pretrained(tmp_path / "base"), checkpoint)
    resumed = run(tmp_path / "cut", 6, resume=str(checkpoint))
    assert resumed[3:] == pytest.approx(uninterrupted[3:], rel=1e-6)


def test_transformers_load_adapter_on_a_zoo_model_takes_transformers_names(tmp_path):
    """transformers' own ``model.load_adapter`` (its PEFT integration), on a zoo model."""
    reference = _reference_dir("llama", tmp_path)
    peft_reference = get_peft_model(reference, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    _randomize_adapter(peft_reference)
    peft_reference.save_pretrained(tmp_path / "adapter")
    model = zoo.load(tmp_path / "base")
    model.load_adapter(str(tmp_path / "adapter"))
    assert (_logits(model) - _logits(peft_reference.eval())).abs().max() <= 1e-5


@pytest.mark.parametrize("kind", ["bert", "gpt2", "llama"])
def test_a_classification_adapter_with_its_trained_head_crosses_both_ways(kind, tmp_path):
    """PEFT's SEQ_CLS saves the classifier (``modules_to_save``) beside the LoRA: renamed with it."""
    import tasks.heads  # noqa: F401  (registers the zoo's classification heads)

    torch.manual_seed(0)
    labels = {"num_labels": 3, "pad_token_id": 0}
    reference = {
        "bert": lambda: transformers.BertForSequenceClassification(transformers.BertConfig(**TINY, **labels)),
        "gpt2": lambda: transformers.GPT2ForSequenceClassification(
            transformers.GPT2Config(vocab_size=97, n_embd=32, n_layer=2, n_head=4, **labels)
        ),
        "llama": lambda: transformers.LlamaForSequenceClassification(
            transformers.LlamaConfig(**TINY, num_key_value_heads=2, **labels)
        ),
    }[kind]().eval()
    reference.save_pretrained(tmp_path / "base")
    targets = {"bert": ["query", "value"], "gpt2": ["c_attn"], "llama": ["q_proj", "v_proj"]}[kind]
    peft_reference = get_peft_model(
        reference, LoraConfig(r=4, target_modules=targets, task_type=TaskType.SEQ_CLS)
    )
    _randomize_adapter(peft_reference)
    with torch.no_grad():  # the head PEFT trains in full must travel too
        for name, param in peft_reference.named_parameters():
            if "modules_to_save" in name:
                param.add_(0.5)
    peft_reference.save_pretrained(tmp_path / "adapter")
    expected = _logits(peft_reference.eval())

    peft_zoo = load_adapter(zoo.load(tmp_path / "base"), tmp_path / "adapter")
    assert (_logits(peft_zoo) - expected).abs().max() <= 1e-5
    save_adapter(peft_zoo, tmp_path / "back")
    plain = type(reference).from_pretrained(tmp_path / "base")
    back = PeftModel.from_pretrained(plain, tmp_path / "back").eval()
    assert (_logits(back) - expected).abs().max() <= 1e-5
