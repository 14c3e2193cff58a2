"""Bad input fails loudly: a typed zoo error whose message names what was wrong and what is valid.

Every checkpoint is tiny and written into pytest's tmp_path; nothing touches the network. Each test
pins the exception type and the exact names (files, fields, tensors) the error carries, and no bad
checkpoint is ever silently random-initialised.
"""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import zoo
import zoo.loading

VOCAB, HIDDEN, LAYERS, HEADS, INTERMEDIATE, POSITIONS = 100, 32, 2, 4, 64, 64


def zoo_gpt2_config(**overrides) -> zoo.GPT2Config:
    fields = dict(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        max_position_embeddings=POSITIONS,
        bos_token_id=0,
        eos_token_id=0,
    )
    return zoo.GPT2Config(**{**fields, **overrides})


def zoo_bert_config() -> zoo.BertConfig:
    return zoo.BertConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        max_position_embeddings=POSITIONS,
    )


def reference_gpt2_config(**overrides) -> transformers.GPT2Config:
    fields = dict(
        vocab_size=VOCAB,
        n_embd=HIDDEN,
        n_layer=LAYERS,
        n_head=HEADS,
        n_inner=INTERMEDIATE,
        n_positions=POSITIONS,
        bos_token_id=0,
        eos_token_id=0,
    )
    return transformers.GPT2Config(**{**fields, **overrides})


def reference_bert_config() -> transformers.BertConfig:
    return transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        max_position_embeddings=POSITIONS,
    )


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """One valid checkpoint per (family, layout), written once for the module; tests copy them."""
    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    builders = {
        "zoo_gpt2": lambda: zoo.GPT2ForCausalLM(zoo_gpt2_config()),
        "ref_gpt2": lambda: transformers.GPT2LMHeadModel(reference_gpt2_config()),
        "zoo_bert": lambda: zoo.BertForMaskedLM(zoo_bert_config()),
        "ref_bert": lambda: transformers.BertForMaskedLM(reference_bert_config()),
        "ref_bert_seqcls": lambda: transformers.BertForSequenceClassification(reference_bert_config()),
    }
    directories = {}
    for name, build in builders.items():
        model = build()
        with torch.no_grad():  # no tensor keeps its initial value (e.g. LayerNorm ones)
            for parameter in model.parameters():
                parameter.add_(0.1 * torch.randn_like(parameter))
        model.save_pretrained(root / name, layout="zoo")  # the zoo fixtures are in the zoo layout
        directories[name] = root / name
    return directories


LOADERS = {
    "zoo_gpt2": zoo.GPT2ForCausalLM,
    "ref_gpt2": zoo.GPT2ForCausalLM,
    "zoo_bert": zoo.BertForMaskedLM,
    "ref_bert": zoo.BertForMaskedLM,
}


def copy_checkpoint(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination)
    return destination


def edit_weights(directory: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> Path:
    """Rewrite ``directory/model.safetensors`` after ``edit`` changed its tensors in place."""
    file = directory / "model.safetensors"
    tensors = load_file(file)
    edit(tensors)
    save_file(tensors, file, metadata={"format": "pt"})
    return directory


def edit_config(directory: Path, **changes) -> Path:
    file = directory / "config.json"
    file.write_text(json.dumps({**json.loads(file.read_text()), **changes}, indent=2))
    return directory


# -- config.json ----------------------------------------------------------------------------------
def test_malformed_json_names_file_line_and_column(checkpoints, tmp_path):
    directory = copy_checkpoint(checkpoints["zoo_gpt2"], tmp_path / "ckpt")
    bad_line = '  "hidden_size": ,'
    (directory / "config.json").write_text('{\n  "vocab_size": 100,\n' + bad_line + "\n}\n")
    column = bad_line.index(",") + 1

    for load in (
        lambda: zoo.GPT2ForCausalLM.from_pretrained(directory),
        lambda: zoo.GPT2ForCausalLM.init_from_json(directory / "config.json"),
    ):
        with pytest.raises(zoo.ConfigError) as info:
            load()
        message = str(info.value)
        assert str(directory / "config.json") in message
        assert f"line 3 column {column}" in message
        assert "not valid JSON" in message


def test_config_that_is_not_an_object(checkpoints, tmp_path):
    directory = copy_checkpoint(checkpoints["zoo_gpt2"], tmp_path / "ckpt")
    (directory / "config.json").write_text("[1, 2, 3]")
    with pytest.raises(zoo.ConfigError) as info:
        zoo.GPT2ForCausalLM.from_pretrained(directory)
    assert str(info.value) == f"{directory / 'config.json'} must hold a JSON object, found list"


@pytest.mark.parametrize(
    ("layout", "field", "value", "expected"),
    [
        ("zoo_gpt2", "hidden_size", "big", "Field 'hidden_size' expected int, got str (value: 'big')"),
        ("zoo_gpt2", "layer_norm_eps", "tiny", "Field 'layer_norm_eps' expected float, got str"),
        ("zoo_bert", "num_hidden_layers", [2], "Field 'num_hidden_layers' expected int, got list"),
        ("ref_bert", "hidden_size", "big", "Field 'hidden_size' expected int, got str (value: 'big')"),
        ("ref_gpt2", "n_embd", "big", "'big'"),
    ],
)
def test_wrong_typed_field_names_file_and_field(checkpoints, tmp_path, layout, field, value, expected):
    directory = edit_config(copy_checkpoint(checkpoints[layout], tmp_path / "ckpt"), **{field: value})
    model_class = LOADERS[layout]
    for load in (
        lambda: model_class.from_pretrained(directory),
        lambda: model_class.init_from_json(directory / "config.json"),
    ):
        with pytest.raises(zoo.ConfigError) as info:
            load()
        message = str(info.value)
        assert message.startswith(f"{directory / 'config.json'}")
        assert expected in message
        assert field in message


def test_invalid_field_value_names_the_constraint(checkpoints, tmp_path):
    directory = edit_config(
        copy_checkpoint(checkpoints["zoo_gpt2"], tmp_path / "ckpt"), num_attention_heads=5
    )
    with pytest.raises(zoo.ConfigError) as info:
        zoo.GPT2ForCausalLM.from_pretrained(directory)
    assert str(directory / "config.json") in str(info.value)
    assert "hidden_size (32) must be a multiple of num_attention_heads (5)" in str(info.value)


@pytest.mark.parametrize(
    ("model_class", "layout", "found", "loads"),
    [
        (zoo.GPT2ForCausalLM, "zoo_bert", "zoo_bert", "'gpt2', 'zoo_gpt2'"),
        (zoo.GPT2ForCausalLM, "ref_bert", "bert", "'gpt2', 'zoo_gpt2'"),
        (zoo.BertForMaskedLM, "zoo_gpt2", "zoo_gpt2", "'bert', 'roberta', 'zoo_bert', 'zoo_roberta'"),
        (zoo.BertForMaskedLM, "ref_gpt2", "gpt2", "'bert', 'roberta', 'zoo_bert', 'zoo_roberta'"),
    ],
)
def test_other_familys_model_type_lists_what_the_class_loads(checkpoints, model_class, layout, found, loads):
    config_file = checkpoints[layout] / "config.json"
    for load in (
        lambda: model_class.from_pretrained(checkpoints[layout]),
        lambda: model_class.init_from_json(config_file),
    ):
        with pytest.raises(zoo.ConfigError) as info:
            load()
        assert str(info.value) == (
            f"{config_file}: model_type {found!r} cannot be loaded by {model_class.__name__}; "
            f"it loads model_type {loads} (config builders tried: none registered)"
        )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"hidden_size": "big"}, "Field 'hidden_size' expected int, got str (value: 'big')"),
        ({"num_attention_heads": 5}, "hidden_size (32) must be a multiple of num_attention_heads (5)"),
        ({"norm_type": "batchnorm"}, "norm_type='batchnorm' is not one of layernorm, rmsnorm"),
        ({"hiden_size": 64}, "unknown config field(s) hiden_size for GPT2Config; valid: "),
    ],
)
@pytest.mark.parametrize("layout", ["zoo_gpt2", "ref_gpt2"])
def test_init_from_json_rejects_bad_overrides(checkpoints, layout, overrides, expected):
    config_file = checkpoints[layout] / "config.json"
    with pytest.raises(zoo.ConfigError) as info:
        zoo.GPT2ForCausalLM.init_from_json(config_file, **overrides)
    message = str(info.value)
    assert message.startswith(str(config_file))
    assert expected in message
    if "unknown" in expected:  # the valid field names are listed
        assert "hidden_size" in message.split("valid: ")[1].split(", ")


@pytest.mark.parametrize("layout", ["zoo_gpt2", "ref_gpt2"])
def test_init_from_json_applies_valid_overrides(checkpoints, layout):
    model = zoo.GPT2ForCausalLM.init_from_json(
        checkpoints[layout] / "config.json", num_hidden_layers=3, hidden_size=48, num_attention_heads=6
    )
    assert (model.config.num_hidden_layers, model.config.hidden_size, model.config.num_attention_heads) == (
        3,
        48,
        6,
    )
    assert len(model.model.layers) == 3
    assert tuple(model.model.embed_tokens.weight.shape) == (VOCAB, 48)
    assert not any(p.is_meta for p in model.parameters())


@pytest.mark.parametrize(
    ("field", "value", "supported"),
    [
        ("add_cross_attention", True, False),
        ("scale_attn_by_inverse_layer_idx", True, False),
        ("scale_attn_weights", False, True),
    ],
)
def test_reference_gpt2_config_with_unsupported_feature(checkpoints, tmp_path, field, value, supported):
    directory = edit_config(copy_checkpoint(checkpoints["ref_gpt2"], tmp_path / "ckpt"), **{field: value})
    expected = f"GPT-2 config field {field}={value} is not supported (only {supported})"
    for load in (
        lambda: zoo.GPT2ForCausalLM.from_pretrained(directory),
        lambda: zoo.GPT2ForCausalLM.init_from_json(directory / "config.json"),
        lambda: zoo.convert_checkpoint(directory, tmp_path / "converted", target="zoo"),
    ):
        with pytest.raises(zoo.ConfigError) as info:
            load()
        assert str(info.value) == f"{directory / 'config.json'}: {expected}"
    assert not (tmp_path / "converted").exists()


# -- weights that do not match the model ----------------------------------------------------------
# The error's lists use the zoo names (what the model calls a parameter); for a reference-layout
# checkpoint the message also names each offending tensor as the checkpoint has it.
# layout -> an extra tensor, a removed tensor as (checkpoint name, zoo name), and a re-shaped tensor as
# (checkpoint name, new shape, shape the checkpoint should have, zoo name, zoo shape, zoo expects).
WEIGHT_CASES = {
    "zoo_gpt2": (
        "model.layers.0.attn.extra_scale",
        ("model.layers.1.mlp.up.bias", "model.layers.1.mlp.up.bias"),
        ("model.norm.weight", (31,), (32,), "model.norm.weight", (31,), (32,)),
    ),
    "ref_gpt2": (
        "transformer.h.0.attn.extra_scale",
        ("transformer.h.1.mlp.c_fc.bias", "model.layers.1.mlp.up.bias"),
        # a Conv1D weight, stored (in, out): the checkpoint's orientation is reported for its name
        (
            "transformer.h.0.attn.c_attn.weight",
            (32, 95),
            (32, 96),
            "model.layers.0.attn.qkv.weight",
            (95, 32),
            (96, 32),
        ),
    ),
    "zoo_bert": (
        "model.layers.0.attn.extra_scale",
        ("head.dense.bias", "head.dense.bias"),
        (
            "model.layers.0.attn.qkv.weight",
            (95, 32),
            (96, 32),
            "model.layers.0.attn.qkv.weight",
            (95, 32),
            (96, 32),
        ),
    ),
    "ref_bert": (
        "bert.encoder.layer.0.attention.self.extra_scale",
        ("bert.encoder.layer.1.intermediate.dense.bias", "model.layers.1.mlp.up.bias"),
        (
            "cls.predictions.transform.dense.weight",
            (32, 31),
            (32, 32),
            "head.dense.weight",
            (32, 31),
            (32, 32),
        ),
    ),
}


@pytest.mark.parametrize("layout", WEIGHT_CASES)
def test_unknown_weight(checkpoints, tmp_path, layout):
    extra, _, _ = WEIGHT_CASES[layout]
    directory = edit_weights(
        copy_checkpoint(checkpoints[layout], tmp_path / "ckpt"),
        lambda t: t.__setitem__(extra, torch.zeros(3)),
    )
    for allow_missing_weights in (False, True):  # allowing missing weights never excuses extra ones
        with pytest.raises(zoo.WeightsMismatchError) as info:
            LOADERS[layout].from_pretrained(directory, allow_missing_weights=allow_missing_weights)
        error = info.value
        assert (error.missing, error.unexpected, error.mismatched) == ([], [extra], [])
        assert f"unexpected (1): {extra}" in str(error)
        assert str(directory) in str(error)


@pytest.mark.parametrize("layout", WEIGHT_CASES)
def test_missing_weight(checkpoints, tmp_path, layout):
    _, (removed, zoo_name), _ = WEIGHT_CASES[layout]
    directory = edit_weights(
        copy_checkpoint(checkpoints[layout], tmp_path / "ckpt"), lambda t: t.pop(removed)
    )
    with pytest.raises(zoo.WeightsMismatchError) as info:
        LOADERS[layout].from_pretrained(directory)
    error = info.value
    assert (error.missing, error.unexpected, error.mismatched) == ([zoo_name], [], [])
    lines = str(error).splitlines()
    assert lines[:3] == [
        f"weights from {directory} do not match the model:",
        f"  missing (1): {zoo_name}",
        "pass allow_missing_weights=True (load_weights(strict=False)) to random-initialise missing ones",
    ]
    if layout.startswith("ref"):
        assert lines[3:] == ["as the checkpoint names them:", f"  missing (1): {removed}"]
    else:
        assert lines[3:] == []


@pytest.mark.parametrize("layout", WEIGHT_CASES)
def test_mis_shaped_weight(checkpoints, tmp_path, layout):
    _, _, (name, shape, expected, zoo_name, zoo_shape, zoo_expected) = WEIGHT_CASES[layout]
    directory = edit_weights(
        copy_checkpoint(checkpoints[layout], tmp_path / "ckpt"),
        lambda t: t.__setitem__(name, torch.zeros(shape)),
    )
    for allow_missing_weights in (False, True):
        with pytest.raises(zoo.WeightsMismatchError) as info:
            LOADERS[layout].from_pretrained(directory, allow_missing_weights=allow_missing_weights)
        error = info.value
        assert (error.missing, error.unexpected) == ([], [])
        assert error.mismatched == [(zoo_name, zoo_shape, zoo_expected)]
        lines = str(error).splitlines()
        assert lines[1] == f"  shape of {zoo_name}: checkpoint {zoo_shape}, model expects {zoo_expected}"
        if layout.startswith("ref"):
            assert lines[2:] == [
                "as the checkpoint names them:",
                f"  shape of {name}: checkpoint {shape}, model expects {expected}",
            ]


@pytest.mark.parametrize(
    ("shape", "zoo_shape"),
    [((31, 32), (95, 32)), ((32, 31), None)],  # concatenates to a wrong size / cannot be concatenated
)
def test_mis_shaped_part_of_a_fused_reference_tensor(checkpoints, tmp_path, shape, zoo_shape):
    name = "bert.encoder.layer.0.attention.self.key.weight"
    directory = edit_weights(
        copy_checkpoint(checkpoints["ref_bert"], tmp_path / "ckpt"),
        lambda t: t.__setitem__(name, torch.zeros(shape)),
    )
    with pytest.raises(zoo.WeightsMismatchError) as info:
        zoo.BertForMaskedLM.from_pretrained(directory)
    error = info.value
    assert (error.missing, error.unexpected) == ([], [])
    assert error.mismatched == [("model.layers.0.attn.qkv.weight", zoo_shape, (96, 32))]
    found = zoo_shape if zoo_shape else "parts that do not fit together"
    assert str(error).splitlines()[1:] == [
        f"  shape of model.layers.0.attn.qkv.weight: checkpoint {found}, model expects (96, 32)",
        "as the checkpoint names them:",
        f"  shape of {name}: checkpoint {shape}, model expects (32, 32)",  # only the offending part
    ]


def test_every_kind_of_mismatch_is_listed_at_once(checkpoints, tmp_path):
    extra, (removed, _), (name, shape, expected, *_) = WEIGHT_CASES["zoo_gpt2"]

    def edit(tensors):
        tensors[extra] = torch.zeros(3)
        del tensors[removed]
        tensors[name] = torch.zeros(shape)

    directory = edit_weights(copy_checkpoint(checkpoints["zoo_gpt2"], tmp_path / "ckpt"), edit)
    with pytest.raises(zoo.WeightsMismatchError) as info:
        zoo.GPT2ForCausalLM.from_pretrained(directory)
    error = info.value
    assert (error.missing, error.unexpected, error.mismatched) == (
        [removed],
        [extra],
        [(name, shape, expected)],
    )
    assert str(error).splitlines()[:4] == [
        f"weights from {directory} do not match the model:",
        f"  missing (1): {removed}",
        f"  unexpected (1): {extra}",
        f"  shape of {name}: checkpoint {shape}, model expects {expected}",
    ]


def test_missing_part_of_a_fused_reference_tensor(checkpoints, tmp_path):
    removed = "bert.encoder.layer.1.attention.self.value.weight"
    directory = edit_weights(
        copy_checkpoint(checkpoints["ref_bert"], tmp_path / "ckpt"), lambda t: t.pop(removed)
    )
    with pytest.raises(zoo.WeightsMismatchError) as info:
        zoo.BertForMaskedLM.from_pretrained(directory, allow_missing_weights=True)
    assert (info.value.missing, info.value.unexpected, info.value.mismatched) == ([removed], [], [])
    assert "fused with bert.encoder.layer.1.attention.self.query.weight" in str(info.value)


def test_base_model_missing_its_pooler_names_it_both_ways(checkpoints):
    # a masked-LM checkpoint has no pooler; the default BertModel has one
    with pytest.raises(zoo.WeightsMismatchError) as info:
        zoo.BertModel.from_pretrained(checkpoints["ref_bert"])
    assert info.value.missing == ["pooler.dense.bias", "pooler.dense.weight"]
    assert str(info.value).splitlines()[-2:] == [
        "as the checkpoint names them:",
        "  missing (2): bert.pooler.dense.bias, bert.pooler.dense.weight",
    ]


def test_unsupported_reference_head_weights_are_unexpected(checkpoints):
    with pytest.raises(zoo.WeightsMismatchError) as info:
        zoo.BertForMaskedLM.from_pretrained(checkpoints["ref_bert_seqcls"])
    # The classifier is in the weight map (tasks.heads loads it), but BertForMaskedLM has no use for it
    # and the checkpoint lacks the masked-LM head: both are named.
    assert info.value.unexpected == ["classifier.bias", "classifier.weight"]
    assert "cls.predictions.transform.dense.weight" in str(info.value)


@pytest.mark.parametrize(
    ("layout", "removed", "zoo_name"),
    [
        ("zoo_gpt2", "model.layers.1.mlp.up.weight", "model.layers.1.mlp.up.weight"),
        ("ref_gpt2", "transformer.h.1.mlp.c_fc.weight", "model.layers.1.mlp.up.weight"),
        ("zoo_bert", "head.norm.weight", "head.norm.weight"),
        ("ref_bert", "bert.encoder.layer.0.output.LayerNorm.bias", "model.layers.0.mlp_norm.bias"),
    ],
)
def test_allow_missing_weights_initialises_only_the_missing_one(
    checkpoints, tmp_path, layout, removed, zoo_name
):
    model_class = LOADERS[layout]
    intact = model_class.from_pretrained(checkpoints[layout]).state_dict()
    directory = edit_weights(
        copy_checkpoint(checkpoints[layout], tmp_path / "ckpt"), lambda t: t.pop(removed)
    )

    model = model_class.from_pretrained(directory, allow_missing_weights=True)
    state = model.state_dict()
    assert set(state) == set(intact)
    for name, tensor in state.items():
        if name != zoo_name:
            assert torch.equal(tensor, intact[name]), name
    initialised = state[zoo_name]
    assert not initialised.is_meta
    assert initialised.shape == intact[zoo_name].shape
    assert not torch.equal(initialised, intact[zoo_name])
    if zoo_name.endswith("norm.weight"):
        assert torch.equal(initialised, torch.ones_like(initialised))
    elif zoo_name.endswith("norm.bias"):
        assert torch.equal(initialised, torch.zeros_like(initialised))
    else:  # a linear weight: normal(0, initializer_range)
        assert abs(initialised.mean().item()) < 0.005
        assert 0.015 < initialised.std().item() < 0.025
    # the tied head still shares the (loaded) embedding
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_load_weights_on_a_live_model_is_strict(checkpoints):
    model = zoo.GPT2ForCausalLM.from_pretrained(checkpoints["zoo_gpt2"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    full = load_file(checkpoints["zoo_gpt2"] / "model.safetensors")

    with pytest.raises(zoo.WeightsMismatchError) as info:
        model.load_weights([("model.norm.weight", torch.full((HIDDEN,), 7.0))])
    assert info.value.unexpected == [] and info.value.mismatched == []
    assert info.value.missing == sorted(set(full) - {"model.norm.weight"})
    assert f"missing ({len(full) - 1}): " in str(info.value)

    with pytest.raises(zoo.WeightsMismatchError) as info:
        model.load_weights([*full.items(), ("decoder.extra", torch.ones(2))], source="my pairs")
    assert (info.value.missing, info.value.unexpected, info.value.mismatched) == ([], ["decoder.extra"], [])
    assert str(info.value).startswith("weights from my pairs do not match the model:")

    with pytest.raises(zoo.WeightsMismatchError) as info:
        model.load_weights({**full, "model.norm.bias": torch.ones(2)}.items())
    assert (info.value.missing, info.value.unexpected, info.value.mismatched) == (
        [],
        [],
        [("model.norm.bias", (2,), (HIDDEN,))],
    )

    # a failed load leaves the model untouched
    after = model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)

    # a complete set loads exactly, under either the tied name or its source
    shifted = {name: tensor + 1 for name, tensor in full.items()}
    report = model.load_weights(shifted.items())
    assert report.loaded == sorted(full) and report.initialized == [] and report.ignored == []
    assert all(torch.equal(model.state_dict()[name], tensor) for name, tensor in shifted.items())
    assert torch.equal(model.lm_head.weight, shifted["model.embed_tokens.weight"])

    # strict=False initialises what is missing and says so
    partial = {k: v for k, v in full.items() if k != "model.layers.0.mlp.up.bias"}
    report = model.load_weights(partial.items(), strict=False)
    assert report.initialized == ["model.layers.0.mlp.up.bias"]
    assert torch.equal(model.model.layers[0].mlp.up.bias, torch.zeros(INTERMEDIATE))


# -- unreadable files -----------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
@pytest.mark.parametrize("layout", ["zoo_gpt2", "ref_bert"])
def test_corrupt_safetensors_names_the_file(checkpoints, tmp_path, layout, damage):
    directory = copy_checkpoint(checkpoints[layout], tmp_path / "ckpt")
    file = directory / "model.safetensors"
    data = file.read_bytes()
    file.write_bytes(
        {"garbage": b"\x13\x37not safetensors" * 64, "truncated": data[: len(data) // 2], "empty": b""}[
            damage
        ]
    )
    with pytest.raises(zoo.CorruptCheckpointError) as info:
        LOADERS[layout].from_pretrained(directory)
    assert str(info.value).startswith(f"{file} is not a readable safetensors file: ")


def test_truncated_tensor_data_names_the_file(checkpoints, tmp_path):
    """A header that survives but tensor bytes that do not: still a CorruptCheckpointError."""
    directory = copy_checkpoint(checkpoints["zoo_gpt2"], tmp_path / "ckpt")
    file = directory / "model.safetensors"
    file.write_bytes(file.read_bytes()[:-1000])
    with pytest.raises(zoo.CorruptCheckpointError) as info:
        zoo.GPT2ForCausalLM.from_pretrained(directory)
    assert str(info.value).startswith(str(file))


# -- checkpoints that are not there ---------------------------------------------------------------
@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"tried the Hub: snapshot_download{args}")

    monkeypatch.setattr(zoo.loading, "snapshot_download", refuse)


def test_path_that_does_not_exist(no_network):
    path = "/tmp/does/not/exist"
    with pytest.raises(zoo.CheckpointNotFoundError) as info:
        zoo.GPT2ForCausalLM.from_pretrained(path)
    assert str(info.value) == f"no such directory: {path} (and it is not a Hub id of the form 'owner/name')"
    with pytest.raises(zoo.CheckpointNotFoundError) as info:
        zoo.convert_checkpoint(path, "/tmp/does/not/exist-either")
    assert path in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_init_from_json_of_a_missing_file(tmp_path):
    with pytest.raises(zoo.CheckpointNotFoundError) as info:
        zoo.GPT2ForCausalLM.init_from_json(tmp_path / "nope.json")
    assert str(info.value) == f"{tmp_path / 'nope.json'} does not exist"


def test_file_instead_of_directory(checkpoints, no_network):
    file = checkpoints["zoo_gpt2"] / "model.safetensors"
    with pytest.raises(zoo.CheckpointNotFoundError) as info:
        zoo.GPT2ForCausalLM.from_pretrained(file)
    assert str(info.value).startswith(f"{file} is a file; pass the directory that holds config.json")


def test_directory_without_config(checkpoints, tmp_path, no_network):
    directory = copy_checkpoint(checkpoints["zoo_gpt2"], tmp_path / "ckpt")
    (directory / "config.json").unlink()
    with pytest.raises(zoo.CheckpointNotFoundError) as info:
        zoo.GPT2ForCausalLM.from_pretrained(directory)
    assert str(info.value) == f"{directory} is a directory but holds no config.json"


def test_directory_without_weights_lists_what_is_there(checkpoints, tmp_path, no_network):
    directory = copy_checkpoint(checkpoints["zoo_gpt2"], tmp_path / "ckpt")
    (directory / "model.safetensors").unlink()
    (directory / "README.md").write_text("a card, no weights")
    with pytest.raises(zoo.CheckpointNotFoundError) as info:
        zoo.GPT2ForCausalLM.from_pretrained(directory)
    assert str(info.value) == (
        f"{directory} holds no weights (model.safetensors, model.safetensors.index.json, pytorch_model.bin "
        "or pytorch_model.bin.index.json); found: README.md, config.json, generation_config.json"
    )


@pytest.fixture
def sharded(tmp_path) -> Path:
    """A zoo GPT-2 checkpoint in several shards, and the single-file one it must equal."""
    torch.manual_seed(1)
    model = zoo.GPT2ForCausalLM(zoo_gpt2_config())
    model.save_pretrained(tmp_path / "single", layout="zoo")
    model.save_pretrained(tmp_path / "sharded", max_shard_size="40KB", layout="zoo")
    return tmp_path / "sharded"


def test_sharded_checkpoint_loads_like_the_single_file(sharded):
    shards = sorted(sharded.glob("model-*.safetensors"))
    assert len(shards) >= 2
    single = zoo.GPT2ForCausalLM.from_pretrained(sharded.parent / "single").state_dict()
    loaded = zoo.GPT2ForCausalLM.from_pretrained(sharded).state_dict()
    assert set(loaded) == set(single)
    assert all(torch.equal(loaded[name], single[name]) for name in single)


def test_shard_index_pointing_to_a_missing_shard(sharded, no_network):
    shards = sorted(sharded.glob("model-*.safetensors"))
    shards[1].unlink()
    with pytest.raises(zoo.CheckpointNotFoundError) as info:
        zoo.GPT2ForCausalLM.from_pretrained(sharded)
    assert str(info.value) == (
        f"{sharded / 'model.safetensors.index.json'} lists shards that do not exist: {shards[1]}"
    )


def test_malformed_shard_index(sharded):
    index = sharded / "model.safetensors.index.json"
    index.write_text('{"weight_map": ')
    with pytest.raises(zoo.CorruptCheckpointError) as info:
        zoo.GPT2ForCausalLM.from_pretrained(sharded)
    assert str(info.value).startswith(f"{index} is not a valid shard index: ")


# -- conversion -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "suggestion"), [("onnx", ""), ("transformer", " (did you mean 'transformers'?)")]
)
def test_convert_to_unknown_target(checkpoints, tmp_path, target, suggestion):
    with pytest.raises(zoo.UnknownNameError) as info:
        zoo.convert_checkpoint(checkpoints["zoo_gpt2"], tmp_path / "out", target=target)
    assert info.value.name == target
    assert info.value.valid == ["transformers", "zoo"]
    assert str(info.value) == f"unknown conversion target {target!r}; valid: transformers, zoo{suggestion}"
    assert not (tmp_path / "out").exists()


def test_convert_unsupported_reference_architecture(checkpoints, tmp_path):
    # No zoo class is BertForMultipleChoice.
    source = copy_checkpoint(checkpoints["ref_bert_seqcls"], tmp_path / "ckpt")
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "architectures": ["BertForMultipleChoice"]}))
    with pytest.raises(zoo.UnknownNameError) as info:
        zoo.convert_checkpoint(source, tmp_path / "out", target="zoo")
    assert info.value.name == "BertForMultipleChoice"
    assert {"BertForMaskedLM", "BertForPreTraining", "BertModel"} <= set(info.value.valid)
    assert str(info.value).startswith(
        f"unknown bert architecture in {source / 'config.json'} 'BertForMultipleChoice'"
    )
    assert "'BertForMultipleChoice'; valid: BertForMaskedLM, BertForPreTraining, " in str(info.value)
    assert not (tmp_path / "out").exists()


def test_zoo_class_for_unknown_model_type_lists_the_registered_ones():
    with pytest.raises(zoo.UnknownNameError) as info:
        zoo.zoo_class_for(
            {"model_type": "falcon", "architectures": ["FalconForCausalLM"]}, source="x/config.json"
        )
    assert info.value.name == "falcon"
    assert {"gpt2", "zoo_gpt2", "bert", "zoo_bert"} <= set(info.value.valid)
    assert str(info.value).startswith(
        "unknown model_type in x/config.json (config builders tried: none registered); model_type 'falcon'; valid: "
    )
