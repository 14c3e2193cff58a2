"""The config contract: the fields the shared layers read are declared on ZooConfig and resolved once, at
construction; the layers read them as attributes, without defaults of their own."""

import ast
import json
from pathlib import Path

import pytest
import torch
import transformers

import zoo

SMALL = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4)
FAMILIES = {
    "bert": (zoo.BertConfig, zoo.BertForMaskedLM, dict(max_position_embeddings=40)),
    "roberta": (zoo.RobertaConfig, zoo.RobertaForMaskedLM, dict(max_position_embeddings=40)),
    "gpt2": (zoo.GPT2Config, zoo.GPT2ForCausalLM, dict(max_position_embeddings=40)),
    "llama": (zoo.LlamaConfig, zoo.LlamaForCausalLM, dict(intermediate_size=48, num_key_value_heads=2)),
    "gpt": (zoo.GPTConfig, zoo.GPT, dict(max_position_embeddings=40)),
    "t5": (
        zoo.T5Config,
        zoo.T5ForConditionalGeneration,
        dict(head_dim=None, relative_attention_num_buckets=8),
    ),
    "glm": (zoo.GLMConfig, zoo.GLMForSeq2Seq, dict(max_position_embeddings=41)),
}
DERIVED = ("head_dim", "num_key_value_heads", "attention_out_bias", "attention_scaling")
LAYERS = Path(zoo.__file__).parent / "layers"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_derived_fields_are_resolved_at_construction(family):
    config_class, _, extra = FAMILIES[family]
    for config in (config_class(), config_class(**SMALL, **extra)):
        assert type(config.head_dim) is int and type(config.num_key_value_heads) is int
        assert type(config.attention_out_bias) is bool and type(config.norm_bias) is bool
        assert isinstance(config.attention_scaling, float)
    assert config.head_dim == 8
    assert config.num_key_value_heads == extra.get("num_key_value_heads", 4)


@pytest.mark.parametrize("layout", ["zoo", None])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_save_and_load_keep_the_config(family, layout, tmp_path):
    config_class, model_class, extra = FAMILIES[family]
    torch.manual_seed(0)
    model = model_class(config_class(**SMALL, **extra))
    model.save_pretrained(tmp_path, layout=layout)
    loaded = model_class.from_pretrained(tmp_path).config
    for field in DERIVED:
        assert getattr(loaded, field) == getattr(model.config, field), field
    assert type(loaded.head_dim) is int and type(loaded.num_key_value_heads) is int
    ignored = ("_name_or_path", "dtype", "architectures")
    strip = lambda data: {k: v for k, v in data.items() if k not in ignored}  # noqa: E731
    if layout == "zoo":
        assert strip(loaded.to_dict()) == strip(model.config.to_dict())


def test_a_derived_value_is_derived_again_from_new_sizes(tmp_path):
    config = zoo.LlamaConfig(**SMALL, intermediate_size=48)
    zoo.LlamaForCausalLM(config).save_pretrained(tmp_path, layout="zoo")
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["head_dim"] is None and saved["num_key_value_heads"] is None
    model = zoo.LlamaForCausalLM.init_from_json(
        tmp_path / "config.json", hidden_size=48, num_attention_heads=6
    )
    assert (model.config.head_dim, model.config.num_key_value_heads) == (8, 6)
    explicit = zoo.LlamaConfig(**SMALL, intermediate_size=48, head_dim=16, num_key_value_heads=2)
    assert zoo.LlamaConfig.from_dict({**explicit.to_dict(), "hidden_size": 64}).head_dim == 16


def test_divisibility_is_checked_before_head_dim_is_derived():
    with pytest.raises(
        zoo.ConfigError, match=r"hidden_size \(30\) must be a multiple of num_attention_heads \(4\)"
    ):
        zoo.LlamaConfig(hidden_size=30, num_attention_heads=4)
    assert zoo.LlamaConfig(hidden_size=30, num_attention_heads=4, head_dim=8).head_dim == 8


def test_layers_read_config_fields_without_getattr():
    found = []
    for path in sorted(LAYERS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
            ):
                continue
            target = node.args[0] if node.args else None
            if (isinstance(target, ast.Name) and target.id == "config") or (
                isinstance(target, ast.Attribute) and target.attr == "config"
            ):
                found.append(f"{path.relative_to(LAYERS.parent.parent)}:{node.lineno}")
    assert not found, "getattr on a config in the shared layers: " + ", ".join(found)


ROPE = {
    "dynamic": {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0},
    "yarn": {
        "rope_type": "yarn",
        "factor": 2.0,
        "original_max_position_embeddings": 16,
        "rope_theta": 10000.0,
    },
}


@pytest.mark.parametrize("rope", list(ROPE))
def test_scaled_rope_matches_transformers(rope, tmp_path):
    config = zoo.LlamaConfig(
        **SMALL, intermediate_size=48, num_key_value_heads=2, max_position_embeddings=32,
        rope_parameters=dict(ROPE[rope]),
    )  # fmt: skip
    torch.manual_seed(0)
    model = zoo.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    model.save_pretrained(tmp_path)
    reference = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(reference) is transformers.LlamaForCausalLM
    assert reference.config.rope_parameters["rope_type"] == rope
    # Beyond max_position_embeddings, where dynamic NTK rescales its frequencies; then back within it.
    for length in (48, 20):
        ids = torch.randint(
            0, SMALL["vocab_size"], (2, length), generator=torch.Generator().manual_seed(length)
        )
        with torch.no_grad():
            expected, actual = reference(ids).logits, model(ids).logits
        assert (actual - expected).abs().max().item() <= 1e-4
