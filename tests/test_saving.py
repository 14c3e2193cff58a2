"""A save that fails midway leaves the previous model in place and loadable.

Every save (``save_pretrained`` in both layouts, ``save_reference``, ``convert_checkpoint``, the
embedding head's sentence-transformers directory, and so Trainer checkpoints and ``run_task``) writes
into a staging directory and moves the finished files into place. Here the weight writer fails after
writing half a file (as a full disk does), and the config writer raises: the directory still loads
the previous model exactly, and no staging directory is left behind.
"""

from __future__ import annotations

import errno

import pytest
import torch
import transformers

import zoo
from zoo.errors import ConfigError

TINY = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)


def _model(seed: int) -> zoo.LlamaForCausalLM:
    torch.manual_seed(seed)
    return zoo.LlamaForCausalLM(zoo.LlamaConfig(**TINY, num_key_value_heads=2)).eval()


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.arange(3, 12).unsqueeze(0)).logits


def _disk_full_after_half_a_file(*args, **kwargs):
    filename = kwargs.get("filename", args[1] if len(args) > 1 else None)
    with open(filename, "wb") as file:
        file.write(b"\0" * 1024)
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("layout", ["transformers", "zoo"])
def test_a_failed_save_leaves_the_previous_model(layout, tmp_path, monkeypatch):
    old, new = _model(0), _model(1)
    old.save_pretrained(tmp_path / "model", layout=layout)
    expected = _logits(old)
    writer = (
        "zoo.pretrained_saving.save_file"
        if layout == "transformers"
        else "transformers.modeling_utils.safe_save_file"
    )
    with monkeypatch.context() as patch:
        patch.setattr(writer, _disk_full_after_half_a_file)
        with pytest.raises(OSError, match="No space left"):
            new.save_pretrained(tmp_path / "model", layout=layout)
    assert torch.equal(_logits(zoo.load(tmp_path / "model")), expected)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging directory left

    with monkeypatch.context() as patch:  # the config writer fails after the weights were written
        config_class = transformers.LlamaConfig if layout == "transformers" else zoo.LlamaConfig
        patch.setattr(
            config_class, "save_pretrained", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom"))
        )
        with pytest.raises(RuntimeError, match="boom"):
            new.save_pretrained(tmp_path / "model", layout=layout)
    assert torch.equal(_logits(zoo.load(tmp_path / "model")), expected)

    new.save_pretrained(tmp_path / "model", layout=layout)  # and a save that succeeds replaces it
    assert torch.equal(_logits(zoo.load(tmp_path / "model")), _logits(new))


def test_convert_and_save_reference_are_staged_too(tmp_path, monkeypatch):
    _model(0).save_pretrained(tmp_path / "source", layout="zoo")
    zoo.convert_checkpoint(tmp_path / "source", tmp_path / "converted", target="transformers")
    expected = _logits(zoo.load(tmp_path / "converted"))
    monkeypatch.setattr("zoo.pretrained_saving.save_file", _disk_full_after_half_a_file)
    with pytest.raises(OSError, match="No space left"):
        zoo.convert_checkpoint(tmp_path / "source", tmp_path / "converted", target="transformers")
    with pytest.raises(OSError, match="No space left"):
        _model(1).save_reference(tmp_path / "converted")
    assert torch.equal(
        _logits(transformers.LlamaForCausalLM.from_pretrained(tmp_path / "converted")), expected
    )


def test_saving_into_a_file_is_an_error_that_writes_nothing(tmp_path):
    target = tmp_path / "config.json"
    target.write_text("{}")
    for layout in ("transformers", "zoo"):
        with pytest.raises(ConfigError, match="is a file; a model is saved into a directory"):
            _model(0).save_pretrained(target, layout=layout)
    _model(0).save_pretrained(tmp_path / "src", layout="zoo")
    with pytest.raises(ConfigError, match="is a file"):
        zoo.convert_checkpoint(tmp_path / "src", target, target="zoo")
    assert target.read_text() == "{}" and sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "src"]


def test_a_save_that_succeeds_removes_the_previous_save_s_other_weight_files(tmp_path):
    model = _model(0)
    model.save_pretrained(tmp_path, layout="zoo", max_shard_size="20KB")
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*model*")) == ["model.safetensors"]
    _, info = transformers.LlamaForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]


@pytest.mark.parametrize("layout", ["transformers", "zoo"])
def test_a_process_that_is_not_the_main_one_leaves_the_main_save_alone(layout, tmp_path):
    """In distributed training every process calls save_pretrained; only the main one writes."""
    model = _model(0)
    model.save_pretrained(tmp_path / "model", layout=layout)
    before = sorted(p.name for p in (tmp_path / "model").iterdir())
    _model(1).save_pretrained(tmp_path / "model", layout=layout, is_main_process=False)
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == before
    assert torch.equal(_logits(zoo.load(tmp_path / "model")), _logits(model))
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
