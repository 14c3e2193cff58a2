"""What ``save_pretrained`` writes is the ecosystem's own format.

Every zoo class with a transformers counterpart (every registered class and task head, for every
reference architecture it declares) is saved with its default ``save_pretrained`` and loaded by the
transformers class its ``config.json`` names: no missing or unexpected weight, outputs equal within
1e-5. Classes without a counterpart keep the zoo layout and never name another library's class.
Trainer resumes from these checkpoints onto the very loss sequence of an uninterrupted run.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from transformers import Trainer, TrainingArguments

import tasks.heads  # noqa: F401  (registers the task heads)
import zoo
from zoo.errors import ConfigError, UnknownNameError

TINY = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
REFERENCE_CONFIGS = {
    "bert": lambda: transformers.BertConfig(**TINY, max_position_embeddings=64),
    "roberta": lambda: transformers.RobertaConfig(**TINY, max_position_embeddings=66, pad_token_id=1),
    # decoders' sequence classifiers read the last non-padding token: they need a pad id
    "gpt2": lambda: transformers.GPT2Config(
        vocab_size=97, n_embd=32, n_layer=2, n_head=4, n_positions=64, pad_token_id=0
    ),
    "llama": lambda: transformers.LlamaConfig(**TINY, num_key_value_heads=2, pad_token_id=0),
    "mistral": lambda: transformers.MistralConfig(
        **TINY, num_key_value_heads=2, sliding_window=None, pad_token_id=0
    ),
    "qwen2": lambda: transformers.Qwen2Config(**TINY, num_key_value_heads=2, pad_token_id=0),
    "t5": lambda: transformers.T5Config(
        vocab_size=97, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, decoder_start_token_id=0
    ),
}


def _cases():
    cases = []
    for name, cls in sorted(zoo.registered_classes().items()):
        if not cls.has_transformers_counterpart:
            continue
        for reference_type in cls.reference_architectures:
            if reference_type in REFERENCE_CONFIGS and reference_type in cls.weight_maps:
                cases.append(pytest.param(cls, reference_type, id=f"{name}-{reference_type}"))
    return cases


def _tiny(cls, reference_type: str):
    torch.manual_seed(0)
    reference = REFERENCE_CONFIGS[reference_type]().to_dict()
    labels = {"id2label": {0: "a", 1: "b", 2: "c"}, "label2id": {"a": 0, "b": 1, "c": 2}}
    config = cls.config_class.from_reference({**reference, **labels})
    model = cls(config).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial values everywhere, so a wrong mapping cannot hide
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    return model


def _outputs(model, is_encoder_decoder: bool) -> torch.Tensor:
    generator = torch.Generator().manual_seed(2)
    input_ids = torch.randint(3, 97, (2, 9), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 6:] = 0
    kwargs = dict(input_ids=input_ids, attention_mask=attention_mask)
    if is_encoder_decoder:
        kwargs["decoder_input_ids"] = torch.randint(3, 97, (2, 5), generator=generator)
    with torch.no_grad():
        output = model(**kwargs)
    return output.logits if "logits" in output else output.last_hidden_state


@pytest.mark.parametrize(("cls", "reference_type"), _cases())
def test_default_save_loads_in_plain_transformers(cls, reference_type, tmp_path):
    model = _tiny(cls, reference_type)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    architecture = cls.reference_architectures[reference_type]
    assert config["model_type"] == reference_type and config["architectures"] == [architecture]
    plain, info = getattr(transformers, architecture).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    expected = _outputs(model, model.config.is_encoder_decoder)
    assert (_outputs(plain.eval(), model.config.is_encoder_decoder) - expected).abs().max() <= 1e-5
    again = zoo.load(tmp_path)  # RoBERTa's checkpoints load as the RoBERTa subclass
    assert type(again).reference_architectures[reference_type] == architecture
    assert torch.equal(_outputs(again, model.config.is_encoder_decoder), expected)


def test_zoo_layout_on_request_names_no_class_of_another_library(tmp_path):
    model = _tiny(zoo.LlamaForCausalLM, "llama")
    model.save_pretrained(tmp_path, layout="zoo")
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "zoo_llama" and config["architectures"] == ["ZooLlamaForCausalLM"]
    assert not hasattr(transformers, config["architectures"][0])
    assert torch.equal(_outputs(zoo.load(tmp_path), False), _outputs(model, False))
    with pytest.raises(UnknownNameError, match="transformers"):
        model.save_pretrained(tmp_path, layout="hf")


@pytest.mark.parametrize("model_type", ["zoo_gpt", "zoo_glm"])
def test_classes_without_a_counterpart_keep_the_zoo_layout(model_type, tmp_path):
    cls = {"zoo_gpt": zoo.GPT, "zoo_glm": zoo.GLMForSeq2Seq}[model_type]
    config = cls.config_class(
        vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64
    )
    cls(config).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == model_type and saved["architectures"] == ["Zoo" + cls.__name__]
    assert type(zoo.load(tmp_path)) is cls


def test_a_config_transformers_cannot_express_falls_back_to_the_zoo_layout(tmp_path, caplog):
    model = _tiny(zoo.LlamaForCausalLM, "llama")
    model.config.attention_out_bias = not model.config.attention_bias  # Llama has one flag for both
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "zoo_llama"
    assert "zoo layout" in caplog.text
    with pytest.raises(ConfigError, match="cannot be expressed"):
        model.save_pretrained(tmp_path / "forced", layout="transformers")


def test_a_save_over_a_sharded_zoo_checkpoint_leaves_no_stale_shard(tmp_path):
    model = _tiny(zoo.LlamaForCausalLM, "llama")
    model.save_pretrained(tmp_path, layout="zoo", max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("model*")) == ["model.safetensors"]
    transformers.LlamaForCausalLM.from_pretrained(tmp_path)


# -- Trainer checkpoints ----------------------------------------------------------------------------
def _run(model, output_dir, max_steps: int, resume: str | None = None) -> list[float]:
    generator = torch.Generator().manual_seed(3)
    rows = [{"input_ids": ids, "labels": ids} for ids in torch.randint(3, 97, (24, 8), generator=generator)]
    args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        lr_scheduler_type="constant",  # the cut run's schedule must not depend on its max_steps
        logging_steps=1,
        save_steps=3,
        report_to=[],
        use_cpu=True,
        dataloader_pin_memory=False,
        seed=7,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=rows)
    trainer.train(resume_from_checkpoint=resume)
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


@pytest.mark.parametrize("cls", [zoo.LlamaForCausalLM, zoo.GPT2ForCausalLM])
def test_trainer_resumes_from_a_transformers_layout_checkpoint_exactly(cls, tmp_path):
    reference_type = "llama" if cls is zoo.LlamaForCausalLM else "gpt2"
    uninterrupted = _run(_tiny(cls, reference_type), tmp_path / "full", max_steps=6)
    _run(_tiny(cls, reference_type), tmp_path / "cut", max_steps=3)
    checkpoint = tmp_path / "cut" / "checkpoint-3"
    assert json.loads((checkpoint / "config.json").read_text())["model_type"] == reference_type
    getattr(transformers, cls.reference_architectures[reference_type]).from_pretrained(checkpoint)
    # a fresh model (other weights) resumed from the checkpoint continues the same run
    fresh = cls(_tiny(cls, reference_type).config)
    resumed = _run(fresh, tmp_path / "cut", max_steps=6, resume=str(checkpoint))
    assert len(uninterrupted) == 6 and resumed[:3] == uninterrupted[:3]  # the history travels along
    assert resumed[3:] == pytest.approx(uninterrupted[3:], rel=1e-6)
