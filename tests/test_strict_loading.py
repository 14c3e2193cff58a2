"""No loading option random-initialises a weight the checkpoint lacks without being asked to.

The zoo's loader is strict; the options it hands to transformers' loader (``device_map="auto"``,
quantizers) and the Auto classes used to fall back to transformers' warn-and-initialise. Every path
below, in both layouts, raises :class:`zoo.WeightsMismatchError` naming the missing weight unless
``allow_missing_weights=True``, and a single-device ``device_map`` or ``low_cpu_mem_usage`` (which the
zoo's meta-device loader always does) loads through the strict loader itself.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import zoo
from zoo.errors import WeightsMismatchError

TINY = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
LOADERS = {
    "from_pretrained": lambda d, **k: zoo.LlamaForCausalLM.from_pretrained(d, **k),
    "device_map=cpu": lambda d, **k: zoo.LlamaForCausalLM.from_pretrained(d, device_map="cpu", **k),
    "device_map=auto": lambda d, **k: zoo.LlamaForCausalLM.from_pretrained(d, device_map="auto", **k),
    "low_cpu_mem_usage": lambda d, **k: zoo.LlamaForCausalLM.from_pretrained(d, low_cpu_mem_usage=True, **k),
    "AutoModelForCausalLM": lambda d, **k: transformers.AutoModelForCausalLM.from_pretrained(d, **k),
    "AutoModelForCausalLM+device_map": lambda d, **k: transformers.AutoModelForCausalLM.from_pretrained(
        d, device_map="cpu", **k
    ),
}


def _checkpoint_missing_a_weight(directory, layout: str) -> str:
    torch.manual_seed(0)
    model = zoo.LlamaForCausalLM(zoo.LlamaConfig(**TINY, num_key_value_heads=2))
    model.save_pretrained(directory, layout=layout)
    state = load_file(directory / "model.safetensors")
    dropped = next(name for name in state if "mlp" in name)
    del state[dropped]
    save_file(state, directory / "model.safetensors", metadata={"format": "pt"})
    return dropped


@pytest.mark.parametrize("how", list(LOADERS))
@pytest.mark.parametrize("layout", ["zoo", "transformers"])
def test_a_missing_weight_is_an_error_on_every_loading_path(how, layout, tmp_path):
    if layout == "transformers" and how.startswith("AutoModel"):
        pytest.skip("a transformers-layout directory is transformers' own class there (its own load report)")
    dropped = _checkpoint_missing_a_weight(tmp_path, layout)
    with pytest.raises(WeightsMismatchError, match="missing") as error:
        LOADERS[how](tmp_path)
    assert dropped in str(error.value)  # named as the checkpoint names it
    model = LOADERS[how](tmp_path, allow_missing_weights=True)  # on request: initialised and logged
    assert isinstance(model, zoo.LlamaForCausalLM)


def test_a_single_device_map_loads_the_transformers_layout_through_the_zoo_loader(tmp_path):
    torch.manual_seed(0)
    model = zoo.LlamaForCausalLM(zoo.LlamaConfig(**TINY, num_key_value_heads=2)).eval()
    model.save_pretrained(tmp_path)
    ids = torch.arange(3, 12).unsqueeze(0)
    for options in ({"device_map": "cpu"}, {"device_map": {"": "cpu"}}, {"low_cpu_mem_usage": True}):
        loaded = zoo.LlamaForCausalLM.from_pretrained(tmp_path, **options)
        with torch.no_grad():
            assert torch.equal(loaded(input_ids=ids).logits, model(input_ids=ids).logits), options


@pytest.mark.parametrize("layout", ["zoo", "transformers"])
def test_nan_or_infinite_weights_are_named_in_a_warning(layout, tmp_path, caplog):
    torch.manual_seed(0)
    model = zoo.LlamaForCausalLM(zoo.LlamaConfig(**TINY, num_key_value_heads=2))
    with torch.no_grad():
        model.model.layers[1].mlp.up.weight[3, 5] = float("nan")
        model.model.norm.weight[0] = float("inf")
    model.save_pretrained(tmp_path, layout=layout)
    with caplog.at_level("WARNING", logger="zoo"):
        zoo.LlamaForCausalLM.from_pretrained(tmp_path)
    warning = next(r.getMessage() for r in caplog.records if "NaN or infinite" in r.getMessage())
    assert "2 weight(s)" in warning
    assert "model.layers.1.mlp.up.weight" in warning and "model.norm.weight" in warning
    caplog.clear()
    with caplog.at_level("WARNING", logger="zoo"):  # finite weights whose sum overflows are not flagged
        big = zoo.LlamaForCausalLM(zoo.LlamaConfig(**TINY, num_key_value_heads=2))
        with torch.no_grad():
            big.model.norm.weight.fill_(3e38)
        big.save_pretrained(tmp_path / "big", layout=layout)
        zoo.LlamaForCausalLM.from_pretrained(tmp_path / "big")
    assert not [r for r in caplog.records if "NaN or infinite" in r.getMessage()]
