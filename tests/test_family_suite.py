"""The checks every registered family gets for free, driven by the registry (``zoo.families()``).

In the spirit of transformers' ``ModelTesterMixin``: each test is parametrised over the families
registered when the module is collected, so a family added later (a new folder under ``zoo/models``)
is checked without editing this file. Everything a check needs is derived from the declaration
(``zoo.family.Family``): the models come from ``tiny_config`` (96-token vocabulary, every dropout 0,
out-of-range token ids moved into it), the inputs from the family's ``kind``, its ``token_types`` and
the model's ``forward`` signature, the expectations from ``lm_heads``, ``lora_targets``,
``peft_default_targets`` and the classes' ``transformers_architecture``. Nothing here names a family.

Per family:

1. save / load: the base model and each LM head give identical outputs after ``save_pretrained``
   (default layout) -> ``from_pretrained``, and after ``layout="zoo"``;
2. determinism: two eval forwards are equal, the same seed builds the same weights;
3. batching: row i of a padded batch (decoders left padded, other kinds right padded) equals that
   row alone on its non-padding positions (1e-5);
4. eager attention equals sdpa (1e-5), and each is the one that runs;
5. every parameter of each LM head gets a (non-zero) gradient from its loss;
6. gradient checkpointing in train mode (dropout 0) gives the same loss and gradients (1e-5), and the
   blocks are run again in backward;
7. every head kind of ``supported_heads`` builds (``num_labels=3`` for classifiers) and returns a loss
   with labels, its logits (the embedding head: ``pooler_output``) and hidden states when asked;
8. LoRA defaults: ``trainers.lora.apply_lora`` wraps exactly the family's attention projections, and
   PEFT's own ``get_peft_model`` needs no ``target_modules`` (``peft_default_targets``);
9. parity with transformers, where a class has a ``transformers_architecture``: the transformers layout
   loads in the transformers Auto class of its head kind and gives the same outputs (1e-4, fp32, a
   padded batch, sdpa and eager);
10. generative kinds (decoder, encoder-decoder): greedy generation equal cached / uncached, and each
    row of a padded batch equal to that row alone.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable
from functools import cache

import peft
import pytest
import torch
import transformers
from torch import nn

from trainers.lora import apply_lora, task_type_for
from zoo.family import AUTO_CLASSES, LM_HEAD_KINDS, Family, families, head_class, supported_heads

VOCAB = 96
LENGTHS = (10, 7, 4)  # a padded batch of three rows, padded to 10
DECODER_LENGTH = 5  # decoder inputs of encoder-decoders (never padded)
NEW_TOKENS = 6
CLASSIFIER_KINDS = ("sequence-classification", "sequence-labeling", "sequence-labeling-crf")
NUM_LABELS = 3
ATOL = 1e-5
PARITY_ATOL = 1e-4

# (check, family, variant) -> reason: real zoo bugs this suite found, xfail(strict=True) until fixed.
KNOWN_FAILURES: dict[tuple[str, str, str | None], str] = {}


def over_families(check: str, variants: Iterable[str] | None = None):
    """Parametrise a test over every family registered at collection time (and each of ``variants``)."""
    params = []
    for name in families():
        for variant in variants if variants is not None else (None,):
            reason = KNOWN_FAILURES.get((check, name, variant))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            values = (name,) if variants is None else (name, variant)
            params.append(pytest.param(*values, id="-".join(map(str, values)), marks=marks))
    argnames = "family_name" if variants is None else "family_name,variant"
    return pytest.mark.parametrize(argnames, params, indirect=["family_name"])


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# -- the tiny models -------------------------------------------------------------------------------
def _token_fields(family: Family) -> dict[str, object]:
    """The config's ``*token_id`` fields, as the tiny config (or else the class default) sets them."""
    fields = family.config_class.__dataclass_fields__
    tiny = dict(family.tiny_config or {})
    return {
        name: tiny.get(name, field.default)
        for name, field in fields.items()
        if name.endswith("token_id") and field.default is not dataclasses.MISSING
    }


def _in_vocab_ids(family: Family) -> dict[str, object]:
    """Token-id fields moved into the tiny vocabulary (equal ids stay equal), taken from its top."""
    moved: dict[int, int] = {}
    free = iter(range(VOCAB - 1, 0, -1))

    def move(value):
        if isinstance(value, int) and value >= VOCAB:
            if value not in moved:
                moved[value] = next(free)
            return moved[value]
        return value

    result = {}
    for name, value in _token_fields(family).items():
        new = [move(v) for v in value] if isinstance(value, list) else move(value)
        if new != value:
            result[name] = new
    return result


class Case:
    """A family's tiny config, its model classes and inputs derived from its declaration."""

    def __init__(self, family: Family):
        self.family = family
        self.config = config = self.make_config()
        # padding: the config's pad token, else its end-of-text token (as tasks.ensure_pad_token), else 0
        self.pad_id = next(i for i in (config.pad_token_id, config.eos_token_id, 0) if isinstance(i, int))
        special = {getattr(config, name) for name in _token_fields(family)}
        self.ordinary = [i for i in range(VOCAB) if i not in special]  # the inputs' tokens
        # each LM head class once (a decoder's seq2seq head is its causal LM)
        self.lm_classes = dict.fromkeys(family.lm_heads.values())
        self.padding_side = "left" if family.kind == "decoder" else "right"

    def make_config(self, **overrides):
        family = self.family
        values = {
            **family.tiny_config,
            "vocab_size": VOCAB,
            **family.no_dropout(),
            **_in_vocab_ids(family),
            **overrides,
        }
        return family.config_class(**values)

    def lm_kind(self, cls: type) -> str:
        return next(kind for kind, lm in self.family.lm_heads.items() if lm is cls)

    @property
    def models(self) -> list[type]:
        """The base model, then each LM head class."""
        return [self.family.base_class, *self.lm_classes]

    def build(self, cls: type, seed: int = 0, config=None) -> nn.Module:
        torch.manual_seed(seed)
        return cls(config if config is not None else self.config).eval()

    # -- inputs ------------------------------------------------------------------------------------
    def rows(self, lengths: Iterable[int] = LENGTHS, seed: int = 0) -> list[list[int]]:
        generator = torch.Generator().manual_seed(seed)
        pool = torch.tensor(self.ordinary)
        return [pool[torch.randint(len(pool), (n,), generator=generator)].tolist() for n in lengths]

    def inputs(self, model: nn.Module, rows: list[list[int]], side: str | None = None) -> dict:
        """Forward inputs for ``rows`` padded on ``side`` (default: the kind's), as the model takes them."""
        side = side or self.padding_side
        parameters = inspect.signature(model.forward).parameters
        width = max(map(len, rows))
        per_row = []
        for row in rows:
            n = len(row)
            columns = {"input_ids": torch.tensor(row), "attention_mask": torch.ones(n, dtype=torch.long)}
            if self.family.kind == "decoder" and "position_ids" in parameters:  # as generate counts them
                columns["position_ids"] = torch.arange(n)
            if self.family.token_types and "token_type_ids" in parameters:
                # two segments, the second half segment 1 (where it embeds, or shapes a seq2seq mask)
                second = 1 if self._two_segments(model) else 0
                columns["token_type_ids"] = torch.tensor([0] * ((n + 1) // 2) + [second] * (n // 2))
            per_row.append(columns)
        fill = {"input_ids": self.pad_id, "attention_mask": 0, "position_ids": 0, "token_type_ids": 0}
        batch = {}
        for key in per_row[0]:
            padded = []
            for columns in per_row:
                pad = torch.full((width - len(columns[key]),), fill[key], dtype=torch.long)
                padded.append(torch.cat([pad, columns[key]] if side == "left" else [columns[key], pad]))
            batch[key] = torch.stack(padded)
        if "decoder_input_ids" in parameters:
            start = self.config.decoder_start_token_id
            generator = torch.Generator().manual_seed(2)  # the same for every row and batch
            pool = torch.tensor(self.ordinary)
            tail = pool[torch.randint(len(pool), (DECODER_LENGTH - 1,), generator=generator)]
            batch["decoder_input_ids"] = (
                torch.cat([torch.tensor([start]), tail]).expand(len(rows), -1).clone()
            )
        return batch

    def head_kind(self, model: nn.Module) -> str:
        cls = type(model)
        return self.lm_kind(cls) if cls in self.lm_classes else getattr(cls, "head_kind", "base")

    def _two_segments(self, model: nn.Module) -> bool:
        """Segment 1 exists where it embeds (``type_vocab_size`` > 1) or shapes a seq2seq head's mask."""
        return getattr(self.config, "type_vocab_size", 1) > 1 or self.head_kind(model) == "seq2seq"

    def lm_labels(self, model: nn.Module, batch: dict) -> torch.Tensor:
        """Labels of an LM head: the decoder's inputs for encoder-decoders, else the input ids on the
        non-padding positions (the loss shifts them where the head predicts the next token)."""
        if "decoder_input_ids" in batch:
            return batch["decoder_input_ids"].clone()
        return batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)

    def compared(self, output, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(the main output tensor, the mask of its positions that are not padding)."""
        tensor = main_output(output)
        if "decoder_input_ids" in batch:
            return tensor, torch.ones(tensor.shape[:2], dtype=torch.bool)
        return tensor, batch["attention_mask"].bool()


def main_output(output) -> torch.Tensor:
    for key in ("logits", "last_hidden_state", "pooler_output"):
        value = output.get(key) if hasattr(output, "get") else None
        if value is not None:
            return value
    raise AssertionError(f"no logits / last_hidden_state in {type(output).__name__}")


@cache
def _case(name: str) -> Case:
    return Case(families()[name])


@pytest.fixture
def case(family_name) -> Case:
    family = families()[family_name]
    if family.tiny_config is None:
        pytest.skip(f"family {family_name!r} declares no tiny_config: nothing to build its tiny models from")
    return _case(family_name)


@pytest.fixture
def family_name(request):
    return request.param


def forward(model, batch, **kwargs):
    with torch.no_grad():
        return model(**batch, **kwargs)


def max_difference(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    if mask is not None:
        a, b = a[mask], b[mask]
    return (a.float() - b.float()).abs().max().item()


# -- 1. save / load --------------------------------------------------------------------------------
SAVE_LOAD = [f"{layout}-{role}" for layout in ("default-layout", "zoo-layout") for role in ("base", "lm")]


@over_families("save_load", SAVE_LOAD)
def test_save_load_gives_identical_outputs(case, variant, tmp_path):
    """``<layout>-base``: the base model; ``<layout>-lm``: each LM head class."""
    layout = "zoo" if variant.startswith("zoo-layout") else None
    classes = [case.family.base_class] if variant.endswith("-base") else list(case.lm_classes)
    for cls in classes:
        model = case.build(cls)
        batch = case.inputs(model, case.rows())
        expected = main_output(forward(model, batch))
        directory = tmp_path / cls.__name__
        model.save_pretrained(directory, **({"layout": layout} if layout else {}))
        loaded = cls.from_pretrained(directory).eval()
        assert type(loaded) is cls
        actual = main_output(forward(loaded, batch))
        assert torch.equal(actual, expected), (
            f"{cls.__name__} (layout={layout or 'default'}): max |difference| {max_difference(actual, expected)}"
        )


# -- 2. determinism --------------------------------------------------------------------------------
@over_families("determinism")
def test_forward_and_init_are_deterministic(case):
    for cls in case.models:
        model = case.build(cls, seed=0)
        batch = case.inputs(model, case.rows())
        assert torch.equal(main_output(forward(model, batch)), main_output(forward(model, batch))), (
            cls.__name__
        )
        again = case.build(cls, seed=0).state_dict()
        for key, value in model.state_dict().items():
            assert torch.equal(value, again[key]), f"{cls.__name__}.{key}: same seed, other init"
        other = case.build(cls, seed=1).state_dict()
        assert any(not torch.equal(v, other[k]) for k, v in model.state_dict().items()), cls.__name__


# -- 3. batching -----------------------------------------------------------------------------------
@over_families("batching")
def test_padded_batch_rows_equal_rows_alone(case):
    rows = case.rows()
    for cls in case.models:
        model = case.build(cls)
        batch = case.inputs(model, rows)
        batched, mask = case.compared(forward(model, batch), batch)
        for i, row in enumerate(rows):
            alone_batch = case.inputs(model, [row])
            alone, _ = case.compared(forward(model, alone_batch), alone_batch)
            difference = max_difference(batched[i][mask[i]], alone[0])
            assert difference <= ATOL, (
                f"{cls.__name__}: row {i} ({len(row)} tokens, {case.padding_side} padded) differs from "
                f"the row alone by {difference:.2e}"
            )


# -- 4. eager == sdpa ------------------------------------------------------------------------------
class _CountSdpa:
    """Counts calls of torch's scaled_dot_product_attention (transformers' sdpa path calls it)."""

    def __init__(self, monkeypatch):
        self.calls = 0
        original = torch.nn.functional.scaled_dot_product_attention

        def counting(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)


def _with_attention(case: Case, implementation: str, **overrides):
    config = case.make_config(**overrides)
    config._attn_implementation = implementation
    return config


@over_families("eager_sdpa")
def test_eager_attention_equals_sdpa(case, monkeypatch):
    counter = _CountSdpa(monkeypatch)
    for cls in case.models:
        sdpa = case.build(cls, config=_with_attention(case, "sdpa"))
        eager = case.build(cls, config=_with_attention(case, "eager"))
        eager.load_state_dict(sdpa.state_dict())
        assert sdpa.config._attn_implementation == "sdpa" and eager.config._attn_implementation == "eager"
        batch = case.inputs(sdpa, case.rows())
        counter.calls = 0
        out_eager, mask = case.compared(forward(eager, batch), batch)
        assert counter.calls == 0, f"{cls.__name__}: eager attention called sdpa {counter.calls} times"
        out_sdpa, _ = case.compared(forward(sdpa, batch), batch)
        assert counter.calls > 0, f"{cls.__name__}: sdpa attention never called scaled_dot_product_attention"
        difference = max_difference(out_eager, out_sdpa, mask)
        assert difference <= ATOL, f"{cls.__name__}: eager vs sdpa max |difference| {difference:.2e}"


# -- 5. gradients reach every parameter ------------------------------------------------------------
def _loss_and_grads(model, batch, labels) -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
    model.zero_grad(set_to_none=True)
    loss = model(**batch, labels=labels).loss
    loss.backward()
    return loss.detach(), {
        n: (p.grad.clone() if p.grad is not None else None) for n, p in model.named_parameters()
    }


@over_families("gradients")
def test_every_parameter_gets_a_gradient_from_the_lm_loss(case):
    for cls in case.lm_classes:
        model = case.build(cls).train()
        batch = case.inputs(model, case.rows())
        _, grads = _loss_and_grads(model, batch, case.lm_labels(model, batch))
        missing = [n for n, g in grads.items() if g is None]
        zero = [n for n, g in grads.items() if g is not None and not g.any()]
        assert not missing and not zero, (
            f"{cls.__name__}: no gradient for {missing or 'none'}; zero gradient for {zero or 'none'}"
        )


@over_families("fused_loss")
def test_the_chunked_lm_loss_equals_the_plain_path(case):
    """Every LM head takes the chunked loss (``zoo.fused_loss``) when called with labels: loss, logits and
    every gradient equal the plain path's (whole logits, the transformers loss) in fp32."""
    for cls in case.lm_classes:
        model = case.build(cls).train()
        batch = case.inputs(model, case.rows())
        labels = case.lm_labels(model, batch)
        assert model.fuses_loss(model.lm_head), f"{cls.__name__}: its head is not chunked"
        fused_logits = model(**batch, labels=labels).logits
        loss, grads = _loss_and_grads(model, batch, labels)
        model.fused_loss = False
        plain_logits = model(**batch, labels=labels).logits
        plain_loss, plain_grads = _loss_and_grads(model, batch, labels)
        assert not fused_logits.requires_grad and plain_logits.requires_grad, cls.__name__
        assert max_difference(fused_logits, plain_logits) <= ATOL, cls.__name__
        assert (loss - plain_loss).abs().item() <= 1e-6 * plain_loss.abs().item(), cls.__name__
        for name, grad in grads.items():
            other = plain_grads[name]
            assert (grad is None) == (other is None), f"{cls.__name__}.{name}"
            if grad is not None:
                scale = other.abs().max().clamp(min=1e-12).item()
                difference = max_difference(grad, other)
                assert difference <= 1e-5 * scale, (
                    f"{cls.__name__}.{name}: gradient differs by {difference:.2e}"
                )


# -- 6. gradient checkpointing ---------------------------------------------------------------------
@over_families("gradient_checkpointing")
@pytest.mark.filterwarnings("ignore:`gradient_checkpointing_enable` is deprecated:FutureWarning")
def test_gradient_checkpointing_gives_the_same_loss_and_grads(case):
    from transformers.modeling_layers import GradientCheckpointingLayer

    for cls in case.lm_classes:
        model = case.build(cls).train()
        batch = case.inputs(model, case.rows())
        labels = case.lm_labels(model, batch)
        loss, grads = _loss_and_grads(model, batch, labels)

        model.gradient_checkpointing_enable()
        model.train()
        blocks = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
        assert blocks and all(b.gradient_checkpointing for b in blocks), f"{cls.__name__}: not enabled"
        # (transformers checkpoints the blocks' ``forward``, so their own hooks run once: count their first layer)
        calls = []
        hooks = [
            next(b.children()).register_forward_pre_hook(lambda *_, calls=calls: calls.append(1))
            for b in blocks
        ]
        try:
            checkpointed_loss, checkpointed = _loss_and_grads(model, batch, labels)
        finally:
            for hook in hooks:
                hook.remove()
        assert len(calls) == 2 * len(blocks), (
            f"{cls.__name__}: {len(calls)} block forwards for {len(blocks)} blocks: nothing recomputed in backward"
        )
        assert (checkpointed_loss - loss).abs().item() <= ATOL, cls.__name__
        for name, grad in grads.items():
            other = checkpointed[name]
            assert (grad is None) == (other is None), f"{cls.__name__}.{name}"
            if grad is not None:
                difference = max_difference(grad, other)
                assert difference <= ATOL, f"{cls.__name__}.{name}: gradient differs by {difference:.2e}"


# -- 7. every head kind ----------------------------------------------------------------------------
def _head_labels(case: Case, kind: str, model, batch: dict) -> dict:
    generator = torch.Generator().manual_seed(3)
    batch_size, width = batch["input_ids"].shape
    if kind == "sequence-classification":
        return {"labels": torch.arange(batch_size) % NUM_LABELS}
    if kind in ("sequence-labeling", "sequence-labeling-crf"):
        tags = torch.randint(NUM_LABELS, (batch_size, width), generator=generator)
        return {"labels": tags.masked_fill(batch["attention_mask"] == 0, -100)}
    if kind == "embedding":  # a second batch and the target similarity of each pair
        pair = case.inputs(model, case.rows(seed=1))
        extra = {f"pair_{key}": value for key, value in pair.items()}
        return {**extra, "labels": torch.rand(batch_size, generator=generator)}
    return {"labels": case.lm_labels(model, batch)}


@over_families("heads")
def test_every_head_kind_builds_and_returns_loss_logits_hidden_states(case):
    for kind in supported_heads(case.family.name):
        cls = head_class(case.family.name, kind)
        overrides = {"num_labels": NUM_LABELS} if kind in CLASSIFIER_KINDS else {}
        model = case.build(cls, config=case.make_config(**overrides))
        batch = case.inputs(model, case.rows())
        output = forward(model, batch, **_head_labels(case, kind, model, batch), output_hidden_states=True)
        assert output.loss is not None and torch.isfinite(output.loss), f"{kind}: {cls.__name__} gave no loss"
        logits = output.pooler_output if kind == "embedding" else output.logits
        assert logits is not None, f"{kind}: {cls.__name__} gave no logits"
        if kind in CLASSIFIER_KINDS:
            assert logits.shape[-1] == NUM_LABELS, f"{kind}: logits {tuple(logits.shape)}"
        if kind in LM_HEAD_KINDS:
            assert logits.shape[-1] == VOCAB, f"{kind}: logits {tuple(logits.shape)}"
        # transformers' convention: the embeddings and every layer's output
        layers = case.config.num_hidden_layers
        expected = {"hidden_states": layers + 1}
        if "decoder_input_ids" in batch:
            decoder_layers = getattr(case.config, "num_decoder_layers", None) or layers
            expected = {"encoder_hidden_states": layers + 1, "decoder_hidden_states": decoder_layers + 1}
        for name, count in expected.items():
            states = output.get(name)
            assert states, f"{kind}: {cls.__name__} gave no {name} with output_hidden_states=True"
            assert len(states) == count, f"{kind}: {len(states)} {name}, expected {count}"
            assert all(s.shape[-1] == case.config.hidden_size for s in states), f"{kind}: {name}"


# -- 8. LoRA and PEFT defaults ---------------------------------------------------------------------
def _linear_names(model: nn.Module, suffixes: Iterable[str]) -> set[str]:
    return {
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and any(name == s or name.endswith("." + s) for s in suffixes)
    }


def _wrapped(peft_model) -> set[str]:
    prefix = "base_model.model."
    return {
        name.removeprefix(prefix)
        for name, module in peft_model.named_modules()
        if isinstance(module, peft.tuners.lora.LoraLayer)
    }


@over_families("lora")
def test_lora_defaults_wrap_the_declared_projections(case):
    attention, _ = case.family.lora_targets
    peft_inputs, _ = case.family.peft_default_targets
    for cls in case.lm_classes:
        model = case.build(cls)
        expected = _linear_names(model, attention)
        assert expected, f"{cls.__name__} has none of {attention}"
        wrapped = apply_lora(model)
        assert _wrapped(wrapped) == expected, (
            f"{cls.__name__}: apply_lora wrapped {sorted(_wrapped(wrapped))}"
        )

        model = case.build(cls)
        expected = _linear_names(model, peft_inputs)
        config = peft.LoraConfig(task_type=task_type_for(model), r=4)  # no target_modules
        wrapped = peft.get_peft_model(model, config)
        assert _wrapped(wrapped) == expected, (
            f"{cls.__name__}: PEFT defaults wrapped {sorted(_wrapped(wrapped))}"
        )
        batch = case.inputs(model, case.rows())
        loss = wrapped(**batch, labels=case.lm_labels(model, batch)).loss
        loss.backward()
        assert any(p.grad is not None for n, p in wrapped.named_parameters() if "lora_B" in n)


# -- 9. parity with transformers -------------------------------------------------------------------
@over_families("transformers_parity", ["sdpa", "eager"])
def test_transformers_layout_equals_the_transformers_class(case, variant, tmp_path):
    implementation = variant
    compared = 0
    for cls in case.models:
        model = case.build(cls, config=_with_attention(case, implementation))
        architecture = model.transformers_architecture
        if architecture is None:
            continue
        kind = "base" if cls is case.family.base_class else case.lm_kind(cls)
        auto = AUTO_CLASSES[kind]
        directory = tmp_path / cls.__name__
        model.save_pretrained(directory, layout="transformers")
        # transformers' DeBERTa-v2 has eager attention only: zoo's sdpa is compared with its eager
        reference_class = getattr(transformers, architecture)
        supported = implementation == "eager" or getattr(
            reference_class, f"_supports_{implementation}", False
        )
        reference = auto.from_pretrained(
            directory, attn_implementation=implementation if supported else "eager"
        ).eval()
        assert type(reference).__name__ == architecture and type(reference).__module__.startswith(
            "transformers."
        ), f"{auto.__name__} loaded {type(reference).__module__}.{type(reference).__name__}"
        batch = case.inputs(model, case.rows())
        ours, mask = case.compared(forward(model, batch), batch)
        theirs, _ = case.compared(forward(reference, batch), batch)
        difference = max_difference(ours, theirs, mask)
        assert difference <= PARITY_ATOL, (
            f"{cls.__name__} vs {architecture} ({implementation}): {difference:.2e}"
        )
        compared += 1
    if not compared:
        pytest.skip(f"family {case.family.name!r}: no class with a transformers counterpart")


# -- 10. greedy generation -------------------------------------------------------------------------
def _generator_class(case: Case) -> type:
    kind = {"decoder": "causal-lm", "encoder-decoder": "seq2seq"}.get(case.family.kind)
    if kind is None or kind not in case.family.lm_heads:
        pytest.skip(f"family {case.family.name!r} ({case.family.kind}) is not a decoder or encoder-decoder")
    return case.family.lm_heads[kind]


def _generate(model, batch: dict, case: Case, **kwargs) -> torch.Tensor:
    inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        output = model.generate(
            **inputs,
            do_sample=False,
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=NEW_TOKENS,  # the same length whatever the end-of-text token does
            pad_token_id=case.pad_id,
            **kwargs,
        )
    return output[:, -NEW_TOKENS:]


@over_families("generation")
def test_greedy_generation_cached_uncached_and_padded(case):
    cls = _generator_class(case)
    model = case.build(cls)
    rows = case.rows()
    batch = case.inputs(model, rows)
    cached = _generate(model, batch, case, use_cache=True)
    uncached = _generate(model, batch, case, use_cache=False)
    assert torch.equal(cached, uncached), (
        f"{cls.__name__}: cached {cached.tolist()} != uncached {uncached.tolist()}"
    )
    for i, row in enumerate(rows):
        alone = _generate(model, case.inputs(model, [row]), case)
        assert torch.equal(cached[i], alone[0]), (
            f"{cls.__name__}: row {i} of a {case.padding_side}-padded batch generated {cached[i].tolist()}, "
            f"alone {alone[0].tolist()}"
        )
