"""Chunked linear cross-entropy: a vocabulary head's loss without the whole ``(tokens x vocab)`` logits.

A language model's training step spends much of its memory, and on a CPU much of its time, on the
logits: transformers' heads compute them whole in the autocast dtype, upcast them to fp32 and keep the
fp32 log-softmax for the backward, so a GPT-2 batch of 2,048 tokens holds well over a gigabyte of
``2048 x 50257`` tensors. :func:`linear_cross_entropy` runs the head's matmul chunk by chunk instead, in
the compute dtype (the autocast dtype when autocast is on, else the weights'), takes each chunk's
log-sum-exp in fp32 and computes that chunk's gradients right away (``softmax - one_hot``, scaled by the
loss's denominator), so no fp32 ``(tokens x vocab)`` tensor ever exists and the backward is two
accumulated matmuls. The loss is transformers' (``fixed_cross_entropy``: a mean over the labelled
tokens, or a sum divided by ``num_items_in_batch``), and equal to it in fp32 to rounding.

The logits still come back, computed by the same chunked matmul, in the compute dtype and detached:
``Trainer``, metrics and generation read them; a caller that needs gradients through the logits passes
no labels and computes its own loss. :func:`can_fuse` says when a head qualifies (a plain
``nn.Linear`` nobody hooks: not LoRA-wrapped, quantised, sharded or offloaded; those take the plain
path, as does a model whose ``fused_loss`` is False).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

IGNORE_INDEX = -100
# Each chunk's fp32 working set (logits, softmax) stays near this many bytes.
CHUNK_BYTES = 32 * 2**20


@contextlib.contextmanager
def plain_loss(model: nn.Module) -> Iterator[None]:
    """Inside the block, every zoo model in ``model`` (a PEFT or DDP wrapper included) takes the plain
    path: logits with gradients, for a caller that computes its own loss from them with labels in the batch."""
    owners = [module for module in model.modules() if hasattr(type(module), "fused_loss")]
    saved = [module.__dict__.get("fused_loss") for module in owners]
    for module in owners:
        module.fused_loss = False
    try:
        yield
    finally:
        for module, value in zip(owners, saved):
            if value is None:
                del module.fused_loss
            else:
                module.fused_loss = value


def can_fuse(lm_head: nn.Module) -> bool:
    """Whether ``lm_head`` is a plain, unhooked ``nn.Linear`` whose weight the loss may read directly.

    Not: a LoRA / quantised subclass, a sharded (DTensor) or ZeRO-3-partitioned weight, a module with
    forward hooks (DeepSpeed, accelerate's offloading, a user's hook): those run the module itself.
    """
    if type(lm_head) is not nn.Linear or type(lm_head.weight) is not nn.Parameter:
        return False
    if lm_head._forward_hooks or lm_head._forward_pre_hooks or hasattr(lm_head, "_hf_hook"):
        return False
    return not hasattr(lm_head.weight, "ds_id")  # a DeepSpeed ZeRO-3 partition


def compute_dtype(hidden: torch.Tensor) -> torch.dtype:
    """The dtype the head's matmul runs in: autocast's when autocast is on, else the hidden states'."""
    device_type = hidden.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return hidden.dtype


def shift_left(labels: torch.Tensor) -> torch.Tensor:
    """Causal-LM labels: position ``i`` is scored on token ``i + 1``; the last position on nothing."""
    return F.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:]


def loss_kwargs(kwargs: dict) -> dict:
    """The keyword arguments of transformers' LM losses :func:`linear_cross_entropy` takes from forward's."""
    return {key: kwargs[key] for key in ("num_items_in_batch", "shift_labels") if key in kwargs}


def chunk_rows(vocab_size: int) -> int:
    return max(1, CHUNK_BYTES // (4 * vocab_size))


def linear_cross_entropy(
    hidden: torch.Tensor,
    lm_head: nn.Linear,
    labels: torch.Tensor,
    *,
    shift: bool,
    num_items_in_batch: int | torch.Tensor | None = None,
    shift_labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, logits)`` of ``lm_head(hidden)`` against ``labels`` (-100: ignored), chunk by chunk.

    ``shift``: causal-LM labels (position ``i`` predicts token ``i + 1``; ``shift_labels``, when given, are
    the already shifted ones); else labels align with the positions (masked LM, T5, GLM). The loss is
    the mean over labelled tokens, or their sum over ``num_items_in_batch`` (exact gradient accumulation).
    ``logits`` has ``hidden``'s leading shape, the compute dtype and no gradient.
    """
    if shift:
        labels = shift_labels if shift_labels is not None else shift_left(labels)
    labels = labels.to(hidden.device)
    flat_hidden = hidden.reshape(-1, hidden.shape[-1])
    flat_labels = labels.reshape(-1)
    if flat_labels.shape[0] != flat_hidden.shape[0]:
        raise ValueError(
            f"labels of shape {tuple(labels.shape)} do not match the {tuple(hidden.shape[:-1])} positions "
            "of the hidden states"
        )
    if num_items_in_batch is None:
        denominator = (flat_labels != IGNORE_INDEX).sum()
    else:
        denominator = torch.as_tensor(num_items_in_batch, device=hidden.device)
    dtype = compute_dtype(hidden)
    needs_grad = torch.is_grad_enabled() and (
        hidden.requires_grad
        or lm_head.weight.requires_grad
        or (lm_head.bias is not None and lm_head.bias.requires_grad)
    )
    loss, logits = _LinearCrossEntropy.apply(
        flat_hidden, lm_head.weight, lm_head.bias, flat_labels, denominator, dtype, needs_grad
    )
    return loss, logits.view(*hidden.shape[:-1], logits.shape[-1])


class _LinearCrossEntropy(torch.autograd.Function):
    """Forward computes the loss, the detached logits and, when needed, every input's gradient (per
    chunk); backward scales those gradients by the incoming one (the loss is a scalar)."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, labels, denominator, dtype, needs_grad):
        rows, vocab_size = hidden.shape[0], weight.shape[0]
        with torch.autocast(hidden.device.type, enabled=False):
            weight_c = weight.to(dtype)
            bias_c = None if bias is None else bias.to(dtype)
            logits = hidden.new_empty(rows, vocab_size, dtype=dtype)
            total = hidden.new_zeros((), dtype=torch.float32)
            if needs_grad:
                grad_hidden = torch.zeros_like(hidden)
                grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
                grad_bias = (
                    None
                    if bias is None
                    else torch.zeros(vocab_size, dtype=torch.float32, device=weight.device)
                )
            scale = 1.0 / denominator.to(torch.float32)
            step = chunk_rows(vocab_size)
            for start in range(0, rows, step):
                end = min(start + step, rows)
                chunk = hidden[start:end].to(dtype)
                chunk_logits = logits[start:end]  # the matmul writes the returned logits directly
                if bias_c is None:
                    torch.mm(chunk, weight_c.t(), out=chunk_logits)
                else:
                    torch.addmm(bias_c, chunk, weight_c.t(), out=chunk_logits)
                chunk_labels = labels[start:end]
                scored = chunk_labels != IGNORE_INDEX
                targets = chunk_labels.clamp(min=0).unsqueeze(1)
                wide = chunk_logits.float()
                log_normaliser = torch.logsumexp(wide, dim=-1, keepdim=True)
                target_logits = wide.gather(1, targets)
                total = total + ((log_normaliser - target_logits).squeeze(1) * scored).sum()
                if not needs_grad:
                    continue
                # Eager runs differentiate only the scored rows (a masked LM scores ~15%); a compiled
                # graph keeps static shapes and zeroes the unscored rows instead.
                index = None
                if not torch.compiler.is_compiling() and not bool(scored.all()):
                    index = scored.nonzero().squeeze(1)
                    wide, log_normaliser, targets = wide[index], log_normaliser[index], targets[index]
                    chunk, scored = chunk[index], None
                # d loss / d logits = (softmax - one_hot) * scored / denominator
                grad_logits = (wide - log_normaliser).exp_()
                grad_logits.scatter_add_(1, targets, torch.full_like(targets, -1, dtype=grad_logits.dtype))
                grad_logits.mul_(scale if scored is None else (scored.to(torch.float32) * scale).unsqueeze(1))
                grad_logits = grad_logits.to(dtype)
                if index is None and hidden.dtype == dtype:
                    torch.mm(grad_logits, weight_c, out=grad_hidden[start:end])
                elif index is None:
                    grad_hidden[start:end] = (grad_logits @ weight_c).to(hidden.dtype)
                else:
                    grad_hidden[start:end].index_copy_(0, index, (grad_logits @ weight_c).to(hidden.dtype))
                if dtype == torch.float32:  # accumulated in place by the matmul (no vocab x hidden temporary)
                    grad_weight.addmm_(grad_logits.t(), chunk)
                else:
                    grad_weight.add_(grad_logits.t() @ chunk)
                if grad_bias is not None:
                    grad_bias.add_(grad_logits.sum(0, dtype=torch.float32))
        loss = total * scale
        ctx.mark_non_differentiable(logits)
        if needs_grad:
            ctx.save_for_backward(
                grad_hidden,
                grad_weight.to(weight.dtype),
                None if grad_bias is None else grad_bias.to(bias.dtype),
            )
        ctx.needs_grad = needs_grad
        return loss, logits

    @staticmethod
    def backward(ctx, grad_loss, grad_logits):
        if not ctx.needs_grad:
            return None, None, None, None, None, None, None
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        grad_hidden = grad_hidden * grad_loss.to(grad_hidden.dtype) if ctx.needs_input_grad[0] else None
        grad_weight = grad_weight * grad_loss.to(grad_weight.dtype) if ctx.needs_input_grad[1] else None
        if grad_bias is not None and ctx.needs_input_grad[2]:
            grad_bias = grad_bias * grad_loss.to(grad_bias.dtype)
        else:
            grad_bias = None
        return grad_hidden, grad_weight, grad_bias, None, None, None, None
