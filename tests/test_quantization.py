"""torchao int8 weight-only and bitsandbytes 8-bit: a zoo model quantises as transformers' class does
and survives ``save_pretrained`` -> ``from_pretrained``.

Neither library is in the dev set: importing either adds about 3.4 s to every Python process that
imports transformers' model code here (each logs kernels it cannot load on a CPU machine), which the
suite's many subprocesses cannot afford. They are the ``quantization`` extra, which the README's test
command (and CI) installs after the suite to run this file.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from test_drift_guard import CASES

import zoo


@pytest.mark.parametrize("layout", ["zoo", "transformers"])
def test_torchao_int8_weight_only_survives_save_and_load(layout, tmp_path):
    pytest.importorskip("torchao", reason='pip install -c constraints.txt -e ".[quantization]"')
    from torchao.quantization import Int8WeightOnlyConfig

    case = CASES["LlamaForCausalLM"](tmp_path / "reference")
    # a transformers-layout directory is converted for transformers' loader first
    case.model.save_pretrained(tmp_path / "zoo", layout=layout)
    quantization = transformers.TorchAoConfig(Int8WeightOnlyConfig())
    theirs = transformers.LlamaForCausalLM.from_pretrained(
        tmp_path / "reference", quantization_config=quantization
    )
    ours = zoo.LlamaForCausalLM.from_pretrained(tmp_path / "zoo", quantization_config=quantization)
    ours.save_pretrained(tmp_path / "quantised")
    reloaded = zoo.LlamaForCausalLM.from_pretrained(tmp_path / "quantised")  # no quantization argument now
    weight = reloaded.model.layers[0].mlp.up.weight
    assert type(weight).__name__ == "Int8Tensor" and weight.shape == (64, 32)
    with torch.no_grad():
        expected = theirs(**case.inputs).logits
        quantised = ours(**case.inputs).logits
        actual = reloaded(**case.inputs).logits
        full = case.model(**case.inputs).logits
    keep = case.inputs["attention_mask"].bool()
    assert torch.equal(actual, quantised)  # the reload is the same quantised model
    assert (quantised[keep] - expected[keep]).abs().max().item() <= 1e-5  # and quantises as transformers
    assert 0 < (quantised[keep] - full[keep]).abs().max().item() < 0.5  # int8: close to fp32, not equal


@pytest.mark.parametrize("layout", ["zoo", "transformers"])
def test_bitsandbytes_8bit_survives_save_and_load(layout, tmp_path):
    pytest.importorskip("bitsandbytes", reason='pip install -c constraints.txt -e ".[quantization]"')
    case = CASES["LlamaForCausalLM"](tmp_path / "reference")
    case.model.save_pretrained(tmp_path / "zoo", layout=layout)
    quantization = transformers.BitsAndBytesConfig(load_in_8bit=True)
    theirs = transformers.LlamaForCausalLM.from_pretrained(
        tmp_path / "reference", quantization_config=quantization, device_map="cpu"
    )
    ours = zoo.LlamaForCausalLM.from_pretrained(
        tmp_path / "zoo", quantization_config=quantization, device_map="cpu"
    )
    assert type(ours.model.layers[0].mlp.up).__name__ == "Linear8bitLt"
    ours.save_pretrained(tmp_path / "quantised")
    reloaded = zoo.LlamaForCausalLM.from_pretrained(tmp_path / "quantised", device_map="cpu")
    with torch.no_grad():
        expected = theirs(**case.inputs).logits
        quantised = ours(**case.inputs).logits
        actual = reloaded(**case.inputs).logits
        full = case.model(**case.inputs).logits
    keep = case.inputs["attention_mask"].bool()
    assert torch.equal(actual, quantised)
    assert (quantised[keep] - expected[keep]).abs().max().item() <= 1e-5
    assert 0 < (quantised[keep] - full[keep]).abs().max().item() < 0.5
