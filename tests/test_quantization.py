"""torchao weight-only int8: a zoo model quantises as transformers' class does and survives a save."""

from __future__ import annotations

import pytest
import torch
import transformers
from test_drift_guard import CASES

import zoo

torchao = pytest.importorskip("torchao", reason="pip install torchao==0.18.0 (not in the dev set: noisy on CPU)")


def test_torchao_int8_weight_only_survives_save_and_load(tmp_path):
    from torchao.quantization import Int8WeightOnlyConfig

    case = CASES["LlamaForCausalLM"](tmp_path / "reference")
    case.model.save_pretrained(tmp_path / "zoo")
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
