"""The chunked linear cross-entropy (``zoo.fused_loss``) against the plain path it replaces.

The plain path is transformers' own: the whole logits from ``lm_head`` and the ``LOSS_MAPPING`` loss on
them. In fp32 the loss and every gradient agree to 1e-6 relative; under bf16 autocast to bf16 rounding;
no fp32 ``(tokens x vocab)`` tensor is ever allocated (a dispatch mode watches every op); the heads that
cannot take the chunked path (LoRA on the head, hooks, a replaced ``loss_function``, ``logits_to_keep``)
take the plain one; ``Trainer`` gets the chunked path with no flag.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from transformers.loss.loss_utils import ForCausalLMLoss, ForMaskedLMLoss

import zoo
from zoo import fused_loss
from zoo.fused_loss import can_fuse, linear_cross_entropy

RELATIVE = 1e-6


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).abs().max() / b.float().abs().max().clamp(min=1e-30)).item()


def plain(hidden, head, labels, *, shift, num_items_in_batch=None):
    logits = head(hidden)
    loss_function = ForCausalLMLoss if shift else ForMaskedLMLoss
    return loss_function(
        logits, labels, vocab_size=head.out_features, num_items_in_batch=num_items_in_batch
    ), logits


def grads(loss, *tensors):
    return torch.autograd.grad(loss, tensors)


def problem(rows=3, length=17, hidden=24, vocab=301, bias=False, seed=0, ignored=0.3):
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(hidden, vocab, bias=bias)
    with torch.no_grad():
        head.weight.copy_(torch.randn(vocab, hidden, generator=generator) * 0.2)
        if bias:
            head.bias.copy_(torch.randn(vocab, generator=generator))
    states = torch.randn(rows, length, hidden, generator=generator).requires_grad_()
    labels = torch.randint(vocab, (rows, length), generator=generator)
    labels[torch.rand(rows, length, generator=generator) < ignored] = -100
    return states, head, labels


@pytest.mark.parametrize("shift", [True, False], ids=["causal", "aligned"])
@pytest.mark.parametrize("num_items_in_batch", [None, 29], ids=["mean", "num_items"])
@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
def test_fp32_loss_and_gradients_equal_the_plain_path(shift, num_items_in_batch, bias, monkeypatch):
    monkeypatch.setattr(fused_loss, "CHUNK_BYTES", 4 * 301 * 5)  # chunks of 5 rows: many, one ragged
    states, head, labels = problem(bias=bias)
    params = [states, *head.parameters()]
    loss, logits = linear_cross_entropy(
        states, head, labels, shift=shift, num_items_in_batch=num_items_in_batch
    )
    reference, reference_logits = plain(
        states, head, labels, shift=shift, num_items_in_batch=num_items_in_batch
    )
    assert relative(loss, reference) <= RELATIVE
    assert relative(logits, reference_logits) <= RELATIVE and not logits.requires_grad
    for ours, theirs in zip(grads(loss, *params), grads(reference, *params)):
        assert ours.dtype == theirs.dtype and relative(ours, theirs) <= RELATIVE


def test_gradient_accumulation_with_num_items_in_batch_is_exact():
    """Two micro-batches, each divided by the whole batch's label count, sum to the whole batch's loss and
    gradients (what Trainer does with ``num_items_in_batch``)."""
    states, head, labels = problem(rows=4)
    shifted = fused_loss.shift_left(labels)
    total = int((shifted != -100).sum())
    whole, _ = linear_cross_entropy(states, head, labels, shift=True)
    whole_grads = grads(whole, states, head.weight)
    parts = [
        linear_cross_entropy(
            states[i : i + 2], head, labels[i : i + 2], shift=True, num_items_in_batch=total
        )[0]
        for i in (0, 2)
    ]
    part_grads = grads(parts[0] + parts[1], states, head.weight)
    assert relative(parts[0] + parts[1], whole) <= RELATIVE
    for ours, theirs in zip(part_grads, whole_grads):
        assert relative(ours, theirs) <= RELATIVE


def test_bf16_autocast_matches_the_plain_path_to_bf16_rounding():
    states, head, labels = problem(length=64, hidden=64, vocab=1000)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, logits = linear_cross_entropy(states, head, labels, shift=True)
        reference, reference_logits = plain(states, head, labels, shift=True)
        ours = grads(loss, states, head.weight)
        theirs = grads(reference, states, head.weight)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    assert (logits.float() - reference_logits.float()).abs().max().item() <= 0.05
    assert relative(loss, reference) <= 1e-3
    for g, r in zip(ours, theirs):
        assert g.dtype == r.dtype and relative(g, r) <= 2e-2


class LargestFloat32(TorchDispatchMode):
    """Records the largest fp32 tensor any op returns."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32:
                self.largest = max(self.largest, tensor.numel())
        return out


@pytest.mark.parametrize("path", ["chunked", "plain"])
def test_no_fp32_tokens_by_vocab_tensor_exists_in_a_bf16_step(path, monkeypatch):
    """Forward and backward under bf16 autocast: the chunked path's largest fp32 tensor is one chunk (the
    weight's fp32 gradient aside); the plain path (the check's control) makes whole fp32 logits."""
    states, head, labels = problem(rows=4, length=128, hidden=32, vocab=4096, ignored=0.0)
    tokens_by_vocab = 4 * 128 * 4096
    monkeypatch.setattr(fused_loss, "CHUNK_BYTES", 4 * 4096 * 64)  # chunks of 64 of the 512 tokens
    with LargestFloat32() as watch, torch.autocast("cpu", dtype=torch.bfloat16):
        if path == "chunked":
            loss, _ = linear_cross_entropy(states, head, labels, shift=True)
        else:
            loss, _ = plain(states, head, labels, shift=True)
        loss.backward()
    if path == "chunked":
        chunk = fused_loss.chunk_rows(4096) * 4096
        assert watch.largest <= max(chunk, head.weight.numel()) < tokens_by_vocab
    else:
        assert watch.largest >= tokens_by_vocab


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 3),
    length=st.integers(1, 9),
    vocab=st.integers(2, 40),
    ignored=st.floats(0.0, 0.9),
    shift=st.booleans(),
    chunk=st.integers(1, 7),
    seed=st.integers(0, 2**16),
)
def test_any_shape_and_label_pattern_equals_the_plain_path(rows, length, vocab, ignored, shift, chunk, seed):
    states, head, labels = problem(rows, length, 8, vocab, seed=seed, ignored=ignored)
    labels.view(-1)[0] = 1  # at least one scored token in the aligned case
    if shift and length > 1:
        labels[0, 1] = 1  # ... and in the shifted one
    original = fused_loss.CHUNK_BYTES
    fused_loss.CHUNK_BYTES = 4 * vocab * chunk
    try:
        loss, logits = linear_cross_entropy(states, head, labels, shift=shift)
    finally:
        fused_loss.CHUNK_BYTES = original
    reference, reference_logits = plain(states, head, labels, shift=shift)
    if torch.isnan(reference):  # nothing scored (a one-token causal row): both are 0 / 0
        assert torch.isnan(loss)
        return
    assert relative(loss, reference) <= RELATIVE
    assert relative(logits, reference_logits) <= RELATIVE
    for ours, theirs in zip(grads(loss, states, head.weight), grads(reference, states, head.weight)):
        assert relative(ours, theirs) <= 1e-5


def test_labels_that_do_not_match_the_positions_are_refused():
    states, head, labels = problem()
    with pytest.raises(ValueError, match=r"labels of shape \(3, 16\) do not match the \(3, 17\) positions"):
        linear_cross_entropy(states, head, labels[:, 1:], shift=False)


# -- which heads take the chunked path ---------------------------------------------------------------
def tiny_llama(**overrides):
    torch.manual_seed(0)
    config = zoo.LlamaConfig(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        **overrides,
    )
    return zoo.LlamaForCausalLM(config)


def batch(vocab=128):
    ids = torch.randint(vocab, (2, 12), generator=torch.Generator().manual_seed(1))
    return {"input_ids": ids, "labels": ids}


def test_a_model_called_with_labels_returns_chunked_loss_and_detached_logits():
    model = tiny_llama()
    fused = model(**batch())
    model.fused_loss = False
    unfused = model(**batch())
    assert not fused.logits.requires_grad and unfused.logits.requires_grad
    assert relative(fused.logits, unfused.logits) <= RELATIVE
    assert relative(fused.loss, unfused.loss) <= RELATIVE
    ours = grads(fused.loss, *model.parameters())
    theirs = grads(unfused.loss, *model.parameters())
    assert max(relative(a, b) for a, b in zip(ours, theirs)) <= 1e-5


def test_without_labels_the_logits_keep_their_gradients():
    model = tiny_llama()
    assert model(input_ids=batch()["input_ids"]).logits.requires_grad


@pytest.mark.parametrize("change", ["hook", "loss_function", "fused_loss_off", "lora"])
def test_heads_that_cannot_be_chunked_take_the_plain_path(change):
    model = tiny_llama()
    if change == "hook":
        model.lm_head.register_forward_hook(lambda module, args, output: None)
    elif change == "loss_function":
        model.loss_function = lambda logits, labels, **kw: logits.float().mean()
    elif change == "fused_loss_off":
        model.fused_loss = False
    else:
        import peft

        model = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["lm_head", "q_proj"]))
    output = model(**batch())
    assert output.logits.requires_grad  # the plain path's logits
    if change == "loss_function":
        assert output.loss.item() == pytest.approx(output.logits.float().mean().item())


def test_only_whole_logits_are_chunked():
    model = tiny_llama()
    assert model.fuses_loss(model.lm_head) and not model.fuses_loss(model.lm_head, logits_to_keep=5)
    assert not model.fuses_loss(model.lm_head, logits_to_keep=torch.tensor([1, 2]))


def test_can_fuse_refuses_subclasses_and_hooked_or_partitioned_weights():
    class Quantised(nn.Linear):
        pass

    assert can_fuse(nn.Linear(4, 8)) and not can_fuse(Quantised(4, 8))
    hooked = nn.Linear(4, 8)
    hooked.register_forward_pre_hook(lambda *args: None)
    partitioned = nn.Linear(4, 8)
    partitioned.weight.ds_id = 3
    assert not can_fuse(hooked) and not can_fuse(partitioned)


def test_trainer_gets_the_chunked_path_with_no_flag(tmp_path, monkeypatch):
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    calls = []
    forward = fused_loss._LinearCrossEntropy.forward

    def counting(ctx, *args):
        calls.append(args[-1])  # needs_grad
        return forward(ctx, *args)

    monkeypatch.setattr(fused_loss._LinearCrossEntropy, "forward", staticmethod(counting))
    ids = torch.randint(128, (8, 12), generator=torch.Generator().manual_seed(2))
    data = Dataset.from_dict({"input_ids": ids.tolist(), "labels": ids.tolist()})
    args = TrainingArguments(
        tmp_path, max_steps=2, per_device_train_batch_size=4, report_to=[], use_cpu=True, save_strategy="no"
    )
    model = tiny_llama()
    before = model.lm_head.weight.detach().clone()
    Trainer(model=model, args=args, train_dataset=data).train()
    assert calls == [True, True]
    assert not torch.equal(before, model.lm_head.weight)


def test_plain_loss_gives_differentiable_logits_inside_the_block_only():
    import peft

    model = peft.get_peft_model(tiny_llama(), peft.LoraConfig(r=2, task_type="CAUSAL_LM"))
    with fused_loss.plain_loss(model):
        assert model(**batch()).logits.requires_grad
    assert not model(**batch()).logits.requires_grad
    assert "fused_loss" not in model.base_model.model.__dict__
