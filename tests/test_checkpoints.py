"""Saving, loading and converting checkpoints in both layouts, and the seeds' model API."""

import json

import pytest
import torch
import transformers
from reference_models import ZOO_CLASS, padded_batch, reference_and_zoo

import zoo

REFERENCE_CLASS = {
    "gpt2": transformers.GPT2LMHeadModel,
    "bert": transformers.BertForMaskedLM,
    "bert-base": transformers.BertModel,
    "roberta": transformers.RobertaForMaskedLM,
}


def _logits(model, batch):
    with torch.no_grad():
        out = model(**batch)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


@pytest.mark.parametrize("kind", ["gpt2", "bert", "bert-base", "roberta"])
def test_export_loads_in_plain_transformers(kind, tmp_path):
    reference, model = reference_and_zoo(kind, tmp_path / "ref")
    model.save_reference(tmp_path / "exported")
    config = json.loads((tmp_path / "exported" / "config.json").read_text())
    assert config["model_type"] == reference.config.model_type
    assert config["architectures"] == [type(reference).__name__]
    reloaded = REFERENCE_CLASS[kind].from_pretrained(tmp_path / "exported")
    batch = padded_batch(1 if kind.startswith("roberta") else 0)
    assert (_logits(reloaded, batch) - _logits(model, batch)).abs().max().item() <= 1e-5
    # Every reference tensor is written back under its own name with its own values.
    original = reference.state_dict()
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, original[name]), name


@pytest.mark.parametrize("kind", ["gpt2", "bert"])
def test_convert_checkpoint_both_ways(kind, tmp_path):
    reference, _ = reference_and_zoo(kind, tmp_path / "ref")
    zoo.convert_checkpoint(tmp_path / "ref", tmp_path / "zoo", target="zoo")
    zoo.convert_checkpoint(tmp_path / "zoo", tmp_path / "back", target="transformers")
    assert json.loads((tmp_path / "zoo" / "config.json").read_text())["model_type"].startswith("zoo_")
    back = REFERENCE_CLASS[kind].from_pretrained(tmp_path / "back")
    for name, tensor in reference.state_dict().items():
        assert torch.equal(tensor, back.state_dict()[name]), name


@pytest.mark.parametrize("kind", ["gpt2", "bert", "roberta"])
def test_zoo_layout_round_trip_and_auto_classes(kind, tmp_path):
    _, model = reference_and_zoo(kind, tmp_path / "ref")
    model.save_pretrained(tmp_path / "zoo", layout="zoo")
    assert (tmp_path / "zoo" / "model.safetensors").is_file()
    config = json.loads((tmp_path / "zoo" / "config.json").read_text())
    assert config["architectures"] == ["Zoo" + ZOO_CLASS[kind].__name__]  # no class another library has
    again = ZOO_CLASS[kind].from_pretrained(tmp_path / "zoo")
    auto_class = transformers.AutoModelForCausalLM if kind == "gpt2" else transformers.AutoModelForMaskedLM
    via_auto = auto_class.from_pretrained(tmp_path / "zoo")
    assert type(via_auto) is ZOO_CLASS[kind]
    batch = padded_batch(1 if kind == "roberta" else 0)
    expected = _logits(model, batch)
    assert torch.equal(_logits(again, batch), expected)
    assert torch.equal(_logits(via_auto, batch), expected)


def test_sharded_save_and_load(tmp_path):
    _, model = reference_and_zoo("gpt2", tmp_path / "ref")
    model.save_pretrained(tmp_path / "zoo", max_shard_size="20KB")
    index = json.loads((tmp_path / "zoo" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 3
    again = zoo.GPT2ForCausalLM.from_pretrained(tmp_path / "zoo")
    model.save_reference(tmp_path / "exported", max_shard_size="20KB")
    assert (tmp_path / "exported" / "model.safetensors.index.json").is_file()
    plain = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "exported")
    batch = padded_batch(0)
    assert torch.equal(_logits(again, batch), _logits(model, batch))
    assert (_logits(plain, batch) - _logits(model, batch)).abs().max().item() <= 1e-5


def test_loading_does_not_random_initialise(tmp_path, monkeypatch):
    reference, _ = reference_and_zoo("gpt2", tmp_path)
    calls = []
    original = zoo.GPT2ForCausalLM._init_weights
    monkeypatch.setattr(
        zoo.GPT2ForCausalLM, "_init_weights", lambda self, m: calls.append(m) or original(self, m)
    )
    model = zoo.GPT2ForCausalLM.from_pretrained(tmp_path)
    assert all(p.device.type == "cpu" for p in model.parameters())  # nothing left on meta
    # Any init that ran did so on the meta device: no parameter holds random values.
    assert torch.equal(model.model.embed_tokens.weight, reference.transformer.wte.weight)
    assert model.lm_head.weight is model.model.embed_tokens.weight


def test_dtype_and_base_model_from_head_checkpoint(tmp_path):
    reference, _ = reference_and_zoo("bert", tmp_path)
    # A masked-LM checkpoint has no pooler: the default BertModel (with one) refuses, naming it ...
    with pytest.raises(zoo.WeightsMismatchError) as info:
        zoo.BertModel.from_pretrained(tmp_path)
    assert info.value.missing == ["pooler.dense.bias", "pooler.dense.weight"] and not info.value.unexpected
    # ... and without a pooler it loads, ignoring the MLM head weights.
    base = zoo.BertModel.from_pretrained(tmp_path, dtype=torch.bfloat16, add_pooling_layer=False)
    assert base.model_name == str(tmp_path)
    assert {p.dtype for p in base.parameters()} == {torch.bfloat16}
    expected = reference.bert.embeddings.word_embeddings.weight.to(torch.bfloat16)
    assert torch.equal(base.embed_tokens.weight, expected)


def test_base_checkpoint_into_head_model_is_strict(tmp_path):
    reference_and_zoo("bert-base", tmp_path)
    with pytest.raises(zoo.WeightsMismatchError) as info:
        zoo.BertForMaskedLM.from_pretrained(tmp_path)
    assert "head.dense.weight" in info.value.missing and "lm_head.bias" in info.value.missing
    model = zoo.BertForMaskedLM.from_pretrained(tmp_path, allow_missing_weights=True)
    assert model.head.dense.weight.abs().sum() > 0


def test_init_from_json_with_overrides(tmp_path):
    config_file = tmp_path / "config.json"
    config_file.write_text(
        json.dumps({"model_type": "zoo_gpt2", "hidden_size": 32, "num_attention_heads": 2})
    )
    model = zoo.GPT2ForCausalLM.init_from_json(config_file, num_hidden_layers=2, vocab_size=100)
    assert len(model.model.layers) == 2 and model.config.hidden_size == 32
    expected = 100 * 32 + 1024 * 32 + 2 * (12 * 32 * 32 + 13 * 32) + 2 * 32  # tied head counted once
    assert model.get_num_params() == expected
    model.model.embed_positions.weight.requires_grad_(False)
    assert model.get_num_params(trainable_only=True) == expected - 1024 * 32
    reference_file = tmp_path / "gpt2.json"
    reference_file.write_text(json.dumps({"model_type": "gpt2", "n_embd": 32, "n_head": 4, "n_layer": 1}))
    from_reference = zoo.GPT2ForCausalLM.init_from_json(reference_file)
    assert from_reference.config.num_attention_heads == 4 and from_reference.config.hidden_size == 32


def test_from_pretrain_prefers_local_directory(tmp_path):
    _, model = reference_and_zoo("gpt2", tmp_path / "downloads" / "my-gpt2")
    loaded = zoo.GPT2ForCausalLM.from_pretrain(tmp_path / "downloads", "my-gpt2")
    assert loaded.model_name.endswith("my-gpt2")
    batch = padded_batch(0)
    assert torch.equal(_logits(loaded, batch), _logits(model, batch))


def test_hub_ids_go_through_snapshot_download(tmp_path, monkeypatch):
    """A name that is not a local directory is fetched with huggingface_hub (revision, cache, token kept)."""
    _, model = reference_and_zoo("gpt2", tmp_path / "snapshot")
    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(tmp_path / "snapshot")

    monkeypatch.setattr(zoo.loading, "snapshot_download", fake_snapshot_download)
    loaded = zoo.GPT2ForCausalLM.from_pretrained(
        "someone/tiny-gpt2", revision="abc123", cache_dir=tmp_path / "cache", local_files_only=True
    )
    assert calls[0][0] == "someone/tiny-gpt2"
    assert calls[0][1]["revision"] == "abc123" and calls[0][1]["local_files_only"] is True
    assert calls[0][1]["cache_dir"] == tmp_path / "cache"
    assert "*.safetensors" in calls[0][1]["allow_patterns"]
    assert loaded.model_name == "someone/tiny-gpt2"
    batch = padded_batch(0)
    assert torch.equal(_logits(loaded, batch), _logits(model, batch))


def test_unreachable_hub_is_a_clear_error(monkeypatch):
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(repo_id, **kwargs):
        raise LocalEntryNotFoundError("no connection")

    monkeypatch.setattr(zoo.loading, "snapshot_download", offline)
    with pytest.raises(zoo.CheckpointNotFoundError, match="unreachable.*local directory.*HF_HUB_OFFLINE"):
        zoo.GPT2ForCausalLM.from_pretrained("someone/tiny-gpt2")
