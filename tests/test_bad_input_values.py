"""Bad numbers and options fail where they enter, with a typed zoo error naming the field, the value and
what would have been valid: config values at construction, predictor arguments before any batch, model
inputs before the forward, and legacy torch weight files read without ever unpickling code."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_models import bpe_tokenizer, save_tiny_checkpoint, tiny_pretrained_model, wordpiece_tokenizer

import zoo
from auto_loader import AutoLoader
from tasks import LabelError, TaskDataError, get_task
from tasks.heads import head_class
from zoo.inputs import check_model_inputs
from zoo.loading import open_weights


@pytest.fixture(scope="module")
def wordpiece():
    return wordpiece_tokenizer()


@pytest.fixture(scope="module")
def bpe():
    return bpe_tokenizer()


# -- config values ----------------------------------------------------------------------------------
TINY = dict(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
TINY_MODELS = {
    "llama": (zoo.LlamaConfig, zoo.LlamaForCausalLM, dict(max_position_embeddings=32)),
    "gpt2": (zoo.GPT2Config, zoo.GPT2ForCausalLM, dict(max_position_embeddings=32)),
    "bert": (zoo.BertConfig, zoo.BertForMaskedLM, dict(max_position_embeddings=32)),
    "t5": (zoo.T5Config, zoo.T5ForConditionalGeneration, dict(head_dim=8, relative_attention_num_buckets=8)),
    "glm": (zoo.GLMConfig, zoo.GLMForSeq2Seq, dict(max_position_embeddings=33)),
}


@pytest.mark.parametrize(
    ("config_class", "fields", "message"),
    [
        (
            zoo.LlamaConfig,
            {"num_attention_heads": 0},
            "num_attention_heads must be a positive integer, got 0",
        ),
        (zoo.GPT2Config, {"hidden_size": -8}, "hidden_size must be a positive integer, got -8"),
        (zoo.BertConfig, {"max_position_embeddings": 0}, "max_position_embeddings must be a positive"),
        (
            zoo.LlamaConfig,
            {"num_key_value_heads": 0},
            "num_key_value_heads must be a positive integer or None, got 0",
        ),
        (zoo.BertConfig, {"type_vocab_size": 0}, "type_vocab_size must be a positive integer, got 0"),
        (zoo.T5Config, {"relative_attention_num_buckets": -1}, "relative_attention_num_buckets must be"),
        (
            zoo.LlamaConfig,
            {"sliding_window": -4},
            "sliding_window must be a positive integer or None, got -4",
        ),
        (zoo.GPT2Config, {"hidden_dropout": 1.5}, "hidden_dropout must be between 0 and 1, got 1.5"),
        (zoo.GLMConfig, {"embedding_dropout": -0.1}, "embedding_dropout must be between 0 and 1, got -0.1"),
        (zoo.BertConfig, {"layer_norm_eps": -1e-5}, "layer_norm_eps must be a positive finite number"),
        (
            zoo.LlamaConfig,
            {"initializer_range": float("nan")},
            "initializer_range must be a finite number >= 0",
        ),
        (zoo.BertConfig, {"num_labels": -2}, "num_labels must be a positive integer, got -2"),
        (zoo.BertConfig, {"id2label": {}}, "num_labels must be a positive integer, got 0"),
        (
            zoo.LlamaConfig,
            {"rope_parameters": {"rope_type": "bogus", "rope_theta": 1e4}},
            "rope_parameters['rope_type']='bogus' is not one of default, ",
        ),
        (
            zoo.LlamaConfig,
            {"rope_parameters": {"rope_type": "default", "rope_theta": "x"}},
            "rope_parameters['rope_theta'] must be a positive finite number, got 'x'",
        ),
        (
            zoo.LlamaConfig,
            {"rope_parameters": {"rope_type": "linear", "rope_theta": 1e4}},
            "Missing required keys in `rope_parameters` for 'rope_type'='linear': {'factor'}",
        ),
        (zoo.GPT2Config, {"vocab_size": "big"}, "Field 'vocab_size' expected int, got str (value: 'big')"),
    ],
)
def test_bad_config_value_is_a_config_error_at_construction(config_class, fields, message):
    with pytest.raises(zoo.ConfigError) as info:
        config_class(**{**TINY, **fields})
    assert message in str(info.value)
    assert config_class.__name__ in str(info.value)


def test_class_num_must_be_positive(tmp_path):
    directory = save_tiny_checkpoint("bert", tmp_path / "tiny-bert")
    for overrides in ({"class_num": -2}, {"num_labels": 0}):
        with pytest.raises(
            zoo.ConfigError, match="num_labels must be a positive integer, got (-2|0)"
        ) as info:
            AutoLoader("classification", str(directory), **overrides)
        assert str(directory / "config.json") in str(info.value)


def test_bad_value_in_config_json_names_the_file(tmp_path):
    directory = tmp_path / "ckpt"
    zoo.LlamaForCausalLM(zoo.LlamaConfig(**TINY)).save_pretrained(directory)
    file = directory / "config.json"
    file.write_text(json.dumps({**json.loads(file.read_text()), "sliding_window": -1}))
    with pytest.raises(
        zoo.ConfigError, match="sliding_window must be a positive integer or None, got -1"
    ) as info:
        zoo.LlamaForCausalLM.from_pretrained(directory)
    assert str(file) in str(info.value)


NUMERIC_FIELDS = {
    "shared": [
        "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
        "max_position_embeddings", "layer_norm_eps", "hidden_dropout", "attention_dropout",
        "initializer_range", "head_dim", "num_labels",
    ],
    "llama": ["num_key_value_heads", "sliding_window", "rope_theta", "rope_type"],
    "gpt2": ["embedding_dropout"],
    "bert": ["type_vocab_size", "classifier_dropout"],
    "t5": ["num_decoder_layers", "relative_attention_num_buckets", "relative_attention_max_distance"],
    "glm": ["embedding_dropout", "attention_scale"],
}  # fmt: skip
VALUES = st.one_of(
    st.integers(-3, 48),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-2.0, 2.0),
    st.text(max_size=4),
    st.sampled_from(["default", "linear", "dynamic", "yarn", "llama3", "8", ""]),
)


@st.composite
def config_values(draw):
    family = draw(st.sampled_from(sorted(TINY_MODELS)))
    field = draw(st.sampled_from(NUMERIC_FIELDS["shared"] + NUMERIC_FIELDS[family]))
    return family, field, draw(VALUES)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config_values())
def test_config_construction_succeeds_and_runs_or_raises_config_error(case):
    family, field, value = case
    config_class, model_class, extra = TINY_MODELS[family]
    fields = {**TINY, **extra}
    if field in ("rope_theta", "rope_type"):
        rope = {"rope_type": "default", "rope_theta": 1e4}
        fields["rope_parameters"] = {**rope, field: value}
    else:
        fields[field] = value
    try:
        config = config_class(**fields)
    except zoo.ConfigError as error:
        assert config_class.__name__ in str(error)
        return
    torch.manual_seed(0)
    model = model_class(config).eval()
    length = min(6, config.max_position_embeddings)
    ids = torch.randint(0, config.vocab_size, (2, length))
    inputs = {"input_ids": ids}
    if config.is_encoder_decoder:
        inputs["decoder_input_ids"] = ids[:, :3]
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[-1] == config.vocab_size


# -- predictor arguments ---------------------------------------------------------------------------
def _classifier(tokenizer, vocab_size=None):
    torch.manual_seed(0)
    config = zoo.BertConfig(
        vocab_size=vocab_size or len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
        **get_task("classification").label_config(["neg", "pos"]),
    )  # fmt: skip
    return head_class("bert", "sequence-classification")(config).eval()


@pytest.fixture(scope="module")
def predictors(wordpiece, bpe):
    """(predictor, inputs) over tiny models for every predictor with a batch_size."""
    torch.manual_seed(0)
    bert = dict(vocab_size=len(wordpiece), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=32, max_position_embeddings=64, pad_token_id=wordpiece.pad_token_id)  # fmt: skip
    embedder = head_class("bert", "embedding")(zoo.BertConfig(**bert)).eval()
    gpt2 = tiny_pretrained_model("gpt2", bpe).eval()
    return [
        (get_task("classification").predictor(_classifier(wordpiece), wordpiece), ["a cat"]),
        (get_task("embedding").predictor(embedder, wordpiece), ["a cat"]),
        (
            get_task("masklm").predictor(zoo.BertForMaskedLM(zoo.BertConfig(**bert)), wordpiece),
            ["the [MASK] sat"],
        ),
        (get_task("lm").predictor(gpt2, bpe), ["the cat"]),
        (get_task("poetry-generation").predictor(gpt2, bpe), ["the cat"]),
        (
            get_task("ner").predictor(
                head_class("bert", "sequence-labeling")(
                    zoo.BertConfig(**bert, **get_task("ner").label_config(["O", "B-PER", "I-PER"]))
                ).eval(),
                wordpiece,
            ),
            ["john lives in paris"],
        ),
    ]


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_batch_size_must_be_positive(predictors, batch_size):
    for predictor, inputs in predictors:
        with pytest.raises(TaskDataError, match=rf"batch_size must be a positive integer, got {batch_size}"):
            predictor.predict(inputs, batch_size=batch_size)


@pytest.mark.parametrize("task", ["lm", "poetry-generation"])
def test_max_new_tokens_past_the_position_table(bpe, task):
    model = tiny_pretrained_model("gpt2", bpe).eval()  # 128 positions
    predictor = get_task(task).predictor(model, bpe)
    prompt = "the cat sat on the mat"
    length = len(bpe(prompt, add_special_tokens=False)["input_ids"])
    with pytest.raises(TaskDataError) as info:
        predictor.predict([prompt], max_new_tokens=200)
    room = 127 if task == "lm" else 126  # one prompt token, and the eos a prefix-LM prompt ends with
    assert str(info.value) == (
        f"max_new_tokens=200 does not fit max_position_embeddings=128: the prompt of {length} tokens is cut "
        f"to make room but keeps one, so at most {room} new tokens fit"
    )
    assert len(predictor.predict([prompt], max_new_tokens=room, min_new_tokens=room, num_beams=1)) == 1
    with pytest.raises(TaskDataError, match="max_new_tokens must be a positive integer, got 0"):
        predictor.predict([prompt], max_new_tokens=0)


def test_glm_max_new_tokens_past_the_block_position_table(wordpiece):
    model = tiny_pretrained_model("glm", wordpiece).eval()  # 128 positions, 128 block positions
    predictor = get_task("poetry-generation").predictor(model, wordpiece)
    with pytest.raises(TaskDataError) as info:
        predictor.predict(["我爱北京"], max_new_tokens=128)
    assert str(info.value) == (
        "max_new_tokens=128 does not fit max_position_embeddings=128: GLM numbers the generated tokens in its "
        "block position table, so at most 127 new tokens fit"
    )
    assert len(predictor.predict(["我爱北京"], max_new_tokens=127, min_new_tokens=127, num_beams=1)) == 1


def test_tokenizer_larger_than_the_vocabulary(wordpiece):
    model = _classifier(wordpiece, vocab_size=20)  # the tokenizer has more tokens than the model
    predictor = get_task("classification").predictor(model, wordpiece)
    with pytest.raises(
        zoo.ModelInputError,
        match=r"token id \d+ is outside the vocabulary: vocab_size=20 \(ids 0 to 19\)",
    ):
        predictor.predict(["john lives in paris"])


# -- model inputs --------------------------------------------------------------------------------------
def test_check_model_inputs_names_what_is_wrong():
    config = zoo.GPT2Config(**TINY, max_position_embeddings=8)
    ids = torch.tensor([[1, 2, 3]])
    check_model_inputs(config, ids, torch.ones_like(ids))
    with pytest.raises(
        zoo.ModelInputError,
        match=r"token id 40 is outside the vocabulary: vocab_size=40 \(ids 0 to 39\)",
    ):
        check_model_inputs(config, torch.tensor([[1, 40]]))
    with pytest.raises(zoo.ModelInputError, match="token id -1 is outside the vocabulary"):
        check_model_inputs(config, torch.tensor([[-1, 3]]))
    with pytest.raises(zoo.ModelInputError, match="9 positions, more than max_position_embeddings=8"):
        check_model_inputs(config, torch.ones(1, 9, dtype=torch.long))
    with pytest.raises(
        zoo.ModelInputError,
        match=r"attention_mask of shape \(1, 4\) does not match input_ids \(1, 3\)",
    ):
        check_model_inputs(config, ids, torch.ones(1, 4))
    roberta = zoo.RobertaConfig(**TINY, max_position_embeddings=8)  # positions from pad_token_id + 1 = 2
    with pytest.raises(zoo.ModelInputError, match="7 positions, more than max_position_embeddings=8"):
        check_model_inputs(roberta, torch.ones(1, 7, dtype=torch.long))
    rotary = zoo.LlamaConfig(**TINY, max_position_embeddings=8)  # rotary positions have no table to overrun
    check_model_inputs(rotary, torch.ones(1, 9, dtype=torch.long))


def test_classification_labels_outside_the_heads_classes(wordpiece):
    task = get_task("classification")
    model = _classifier(wordpiece)  # 2 classes
    records = [{"text": "a cat", "label": "neg"}, {"text": "a dog", "label": "maybe"}]
    dataset = task.preprocess(records, wordpiece, model, labels=["neg", "pos", "maybe"])
    with pytest.raises(LabelError, match=r"labels values not in the label set: '2'; valid: '0', '1'"):
        task.collator(wordpiece, model)([dataset[0], dataset[1]])


def test_classification_inputs_longer_than_the_position_table(wordpiece):
    task = get_task("classification")
    model = _classifier(wordpiece)  # 64 positions
    records = [{"text": "the cat sat on the mat " * 20, "label": "neg"}]
    dataset = task.preprocess(records, wordpiece, model, max_length=100)
    with pytest.raises(zoo.ModelInputError, match="100 positions, more than max_position_embeddings=64"):
        task.collator(wordpiece, model)([dataset[0]])


# -- legacy torch weight files ------------------------------------------------------------------------
def _bin_checkpoint(tmp_path, name, **save_options):
    directory = tmp_path / name
    model = zoo.GPT2ForCausalLM(zoo.GPT2Config(**TINY))
    model.save_pretrained(directory, layout="zoo")
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    (directory / "model.safetensors").unlink()
    torch.save(state, directory / "pytorch_model.bin", **save_options)
    return directory, model


def test_legacy_and_zip_torch_files_load_alike(tmp_path):
    torch.manual_seed(0)
    legacy, model = _bin_checkpoint(tmp_path, "legacy", _use_new_zipfile_serialization=False)
    torch.manual_seed(0)
    current, _ = _bin_checkpoint(tmp_path, "zip")
    with open_weights(legacy) as old, open_weights(current) as new:
        assert sorted(old) == sorted(new)
        for name in old:
            assert torch.equal(old[name](), new[name]())
    loaded = zoo.GPT2ForCausalLM.from_pretrained(legacy)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)


class _CreatesFile:
    """Unpickling it would create ``path``: the proof that a refused file ran no code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("zip_format", [False, True])
@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("code", "cannot be read as a weights-only torch checkpoint"),
        ({"weight": "not a tensor"}, "'weight' is a str, not a tensor"),
        ([torch.ones(2)], "holds a list, not a state dict of tensors"),
    ],
)
def test_torch_file_with_anything_but_tensors_is_refused(tmp_path, zip_format, payload, message):
    directory, _ = _bin_checkpoint(tmp_path, "ckpt")
    marker = tmp_path / "unpickled"
    payload = {"weight": _CreatesFile(marker)} if payload == "code" else payload
    file = directory / "pytorch_model.bin"
    torch.save(payload, file, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(zoo.errors.CorruptCheckpointError) as info, open_weights(directory):
        pass
    assert str(info.value).startswith(str(file)) and message in str(info.value)
    assert not marker.exists()


def test_plain_pickle_is_refused(tmp_path):
    directory, _ = _bin_checkpoint(tmp_path, "ckpt")
    marker = tmp_path / "unpickled"
    with open(directory / "pytorch_model.bin", "wb") as file:
        pickle.dump({"weight": _CreatesFile(marker)}, file)
    with pytest.raises(zoo.errors.CorruptCheckpointError, match="weights-only"), open_weights(directory):
        pass
    assert not marker.exists()


_FORWARD_MODELS = {
    "llama": lambda: zoo.LlamaForCausalLM(
        zoo.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                        num_attention_heads=4, num_key_value_heads=2)
    ),
    "gpt2": lambda: zoo.GPT2ForCausalLM(
        zoo.GPT2Config(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                       max_position_embeddings=8, bos_token_id=0, eos_token_id=0)
    ),
    "bert": lambda: zoo.BertForMaskedLM(
        zoo.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                       intermediate_size=64, max_position_embeddings=8)
    ),
}  # fmt: skip


@pytest.mark.parametrize("family", list(_FORWARD_MODELS))
def test_a_direct_forward_names_the_input_torch_could_not_index(family):
    """Called directly (no predictor in between), the model's own forward explains torch's
    ``index out of range in self``; inputs are read only after the failure, so good calls pay nothing."""
    model = _FORWARD_MODELS[family]().eval()
    with pytest.raises(
        zoo.ModelInputError, match="token id 70 is outside the vocabulary: vocab_size=64"
    ) as error:
        model(input_ids=torch.tensor([[1, 70]]))
    assert isinstance(error.value.__cause__, IndexError)
    if family != "llama":  # learned position tables
        with pytest.raises(zoo.ModelInputError, match="12 positions, more than max_position_embeddings=8"):
            model(input_ids=torch.ones(1, 12, dtype=torch.long))
    model(input_ids=torch.tensor([[1, 63]]))  # the edge of the vocabulary is fine
