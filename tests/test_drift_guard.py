"""The drift guard: what ``generate`` in the installed transformers passes to a forward takes effect.

transformers 5.24 renamed the KV-cache argument (``past_key_values`` -> ``cache``) and zoo's forwards,
which took only the old name, silently decoded every step with no history. These tests record every
argument ``generate`` hands each generative class (heads included) and check that each one is a
declared parameter or a transformers pass-through keyword, that the cache really reaches the forward
and grows, and that cached == uncached == transformers' own class (where transformers has one) for
greedy, beam search, seeded sampling, left-padded batches and the static cache.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import transformers
from hypothesis import given, settings
from hypothesis import strategies as st

import tasks.heads  # noqa: F401  (registers the head classes)
import zoo
from zoo.errors import UnsupportedCacheError
from zoo.hf_internals import PASS_THROUGH_KWARGS, Cache, DynamicCache
from zoo.models.bert import BertForSeq2Seq, RobertaForSeq2Seq

VOCAB = 61
NEW_TOKENS = 8
MODES = {
    "greedy": dict(do_sample=False),
    "beam": dict(do_sample=False, num_beams=3),
    "sample": dict(do_sample=True, top_k=0),
}


def _noisy(model: torch.nn.Module, seed: int = 0, scale: float = 0.15) -> torch.nn.Module:
    """Random weights with peaked logits, so greedy choices are far from ties (float noise between a
    cached and an uncached step cannot flip them)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * scale)
    return model.eval()


def _left_padded(rows: list[list[int]], pad: int) -> dict[str, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return {"input_ids": ids, "attention_mask": mask}


def _alone(rows: list[list[int]]) -> list[dict[str, torch.Tensor]]:
    return [
        {"input_ids": torch.tensor([r]), "attention_mask": torch.ones(1, len(r), dtype=torch.long)}
        for r in rows
    ]


@dataclass
class Case:
    model: torch.nn.Module
    inputs: dict[str, torch.Tensor]  # a left-padded batch of two prompts of different lengths
    settings: dict  # eos / pad ids for generate
    rows_alone: list[dict[str, torch.Tensor]]  # each prompt alone, unpadded
    reference: torch.nn.Module | None = None  # transformers' class with the same weights


_PROMPTS = [[11, 23, 35, 47, 19, 8], [40, 9, 30, 52]]


def _from_reference(reference, zoo_class, directory: Path, pad: int = 0, **noise) -> Case:
    _noisy(reference, **noise)
    reference.save_pretrained(directory)
    model = zoo_class.from_pretrained(directory)
    settings = dict(pad_token_id=pad, eos_token_id=reference.config.eos_token_id)
    inputs, alone = _left_padded(_PROMPTS, pad), _alone(_PROMPTS)
    return Case(model, inputs, settings, alone, reference=reference)


def _gpt2(directory, zoo_class=zoo.GPT2ForCausalLM):
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=1, eos_token_id=2
    )
    return _from_reference(transformers.GPT2LMHeadModel(config), zoo_class, directory)


def _llama(
    directory,
    config_class=transformers.LlamaConfig,
    reference_class=transformers.LlamaForCausalLM,
    zoo_class=zoo.LlamaForCausalLM,
    **extra,
):
    torch.manual_seed(0)
    config = config_class(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, bos_token_id=1, eos_token_id=2, **extra,
    )  # fmt: skip
    return _from_reference(reference_class(config), zoo_class, directory)


def _gemma(directory, config_class, reference_class, zoo_class, seed: int):
    """Sliding (window 4, shorter than prompt + new tokens) and global layers, each with its cache layer;
    smaller noise than _llama's: the sqrt(hidden) embedding scale peaks the logits enough."""
    torch.manual_seed(0)
    config = config_class(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=8, sliding_window=4,
        layer_types=["sliding_attention", "full_attention"], max_position_embeddings=64, pad_token_id=0,
        bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    return _from_reference(reference_class(config), zoo_class, directory, seed=seed, scale=0.05)


def _t5(directory):
    torch.manual_seed(0)
    config = transformers.T5Config(
        vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, relative_attention_max_distance=16, dropout_rate=0.0,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )  # fmt: skip
    return _from_reference(
        transformers.T5ForConditionalGeneration(config),
        zoo.T5ForConditionalGeneration,
        directory,
        seed=1,
        scale=0.5,
    )


def _glm(directory):
    torch.manual_seed(0)
    config = zoo.GLMConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64,
        embedding_dropout=0.0, hidden_dropout=0.0, attention_dropout=0.0, pad_token_id=0, mask_token_id=3,
        gmask_token_id=4, sop_token_id=5, eop_token_id=6,
    )  # fmt: skip
    model = _noisy(zoo.GLMForSeq2Seq(config), seed=2)
    contexts = [[11, 23, 3, 47, 19, 8], [40, 3, 30]]
    alone = [model.blank_infilling_inputs([row]) for row in contexts]
    return Case(model, model.blank_infilling_inputs(contexts), dict(pad_token_id=0, eos_token_id=6), alone)


def _unilm(directory, head_class=BertForSeq2Seq, config_class=zoo.BertConfig, pad=0):
    torch.manual_seed(0)
    config = config_class(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=70, pad_token_id=pad, hidden_dropout=0.0, attention_dropout=0.0,
    )  # fmt: skip
    model = _noisy(head_class(config))
    cls, sep = 2, 3
    prompts = [[cls, *row, sep] for row in _PROMPTS]
    return Case(model, _left_padded(prompts, pad), dict(pad_token_id=pad, eos_token_id=sep), _alone(prompts))


def _bart(
    directory,
    config_class=transformers.BartConfig,
    reference_class=transformers.BartForConditionalGeneration,
    seed: int = 3,  # noise under which the tiny model's greedy continuations are not one repeated token
):
    torch.manual_seed(0)
    config = config_class(
        vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
        dropout=0.0, pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=2,
    )  # fmt: skip
    zoo_class = zoo.registered_classes()[reference_class.__name__]  # zoo's class of the same name
    case = _from_reference(reference_class(config), zoo_class, directory, seed=seed, scale=0.5)
    # BART numbers source positions from the first column, padding or not (as transformers' BART): its
    # sources are right padded
    case.inputs = {key: value.flip(1) for key, value in _left_padded([r[::-1] for r in _PROMPTS], 0).items()}
    return case


CASES = {
    "GPT2ForCausalLM": _gpt2,
    "GPT": lambda d: _gpt2(d, zoo.GPT),
    "LlamaForCausalLM": _llama,
    "LlamaForCausalLM-mistral-sliding-window": lambda d: _llama(
        d, transformers.MistralConfig, transformers.MistralForCausalLM, sliding_window=4
    ),
    "LlamaForCausalLM-qwen2-bias": lambda d: _llama(
        d, transformers.Qwen2Config, transformers.Qwen2ForCausalLM
    ),
    "Qwen3ForCausalLM": lambda d: _llama(
        d, transformers.Qwen3Config, transformers.Qwen3ForCausalLM, zoo.Qwen3ForCausalLM, head_dim=16
    ),
    "Phi3ForCausalLM": lambda d: _llama(
        d, transformers.Phi3Config, transformers.Phi3ForCausalLM, zoo.Phi3ForCausalLM, pad_token_id=0
    ),
    "Gemma2ForCausalLM": lambda d: _gemma(
        d, transformers.Gemma2Config, transformers.Gemma2ForCausalLM, zoo.Gemma2ForCausalLM, seed=1
    ),
    "Gemma3ForCausalLM": lambda d: _gemma(
        d, transformers.Gemma3TextConfig, transformers.Gemma3ForCausalLM, zoo.Gemma3ForCausalLM, seed=0
    ),
    "T5ForConditionalGeneration": _t5,
    "BartForConditionalGeneration": _bart,
    "MBartForConditionalGeneration": lambda d: _bart(
        d, transformers.MBartConfig, transformers.MBartForConditionalGeneration, seed=1
    ),
    "GLMForSeq2Seq": _glm,
    "BertForSeq2Seq": _unilm,
    "RobertaForSeq2Seq": lambda d: _unilm(d, RobertaForSeq2Seq, zoo.RobertaConfig, pad=1),
    "XLMRobertaForSeq2Seq": lambda d: _unilm(d, zoo.XLMRobertaForSeq2Seq, zoo.XLMRobertaConfig, pad=1),
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    built = {}

    def get(name: str) -> Case:
        if name not in built:
            built[name] = CASES[name](tmp_path_factory.mktemp(name))
        return built[name]

    return get


def test_every_generative_class_has_a_case():
    generative = {cls.__name__ for cls in zoo.registered_classes().values() if cls.can_generate()}
    covered = {name.split("-")[0] for name in CASES}
    assert generative, "no generative class registered"
    assert generative <= covered, (
        f"generative classes without a drift-guard case: {sorted(generative - covered)}"
    )


def _generate(model, inputs, settings, mode, **options):
    torch.manual_seed(0)
    return model.generate(**inputs, **settings, **MODES[mode], max_new_tokens=NEW_TOKENS, **options)


class _Recorder:
    """Every keyword argument each forward call of ``model`` received."""

    def __init__(self, model):
        self.calls: list[dict] = []
        self.handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        assert not args, f"generate passed positional arguments {args}"
        self.calls.append({k: (v.get_seq_length() if isinstance(v, Cache) else v) for k, v in kwargs.items()})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CASES)
def test_generate_arguments_take_effect(cases, name, mode):
    case = cases(name)
    model = case.model
    with _Recorder(model) as cached_run:
        cached = _generate(model, case.inputs, case.settings, mode, use_cache=True)
    uncached = _generate(model, case.inputs, case.settings, mode, use_cache=False)
    assert torch.equal(cached, uncached), (
        f"{name} {mode}: cached {cached.tolist()} != uncached {uncached.tolist()}"
    )

    signature = inspect.signature(model.forward).parameters
    for call in cached_run.calls:
        unknown = set(call) - set(signature) - PASS_THROUGH_KWARGS
        assert not unknown, (
            f"generate passed {sorted(unknown)}, which {type(model).__name__}.forward does not take"
        )
    # The cache reaches every step after the first, holds the tokens seen so far, and only new ones are fed.
    steps = cached_run.calls[1:]
    assert steps, "generate made a single forward call"
    for step, call in enumerate(steps):
        fed = call.get("decoder_input_ids", call.get("input_ids"))
        assert isinstance(call.get("cache"), int) and call["cache"] > 0, (
            f"step {step + 1} got no cache: {sorted(call)}"
        )
        assert fed.shape[-1] == 1, f"step {step + 1} fed {fed.shape[-1]} tokens with a cache"

    new = cached[:, -NEW_TOKENS:]
    assert len(set(new.flatten().tolist())) > 2, (
        f"degenerate continuation {new.tolist()}: the test would prove nothing"
    )
    if case.reference is not None:
        expected = _generate(case.reference, case.inputs, case.settings, mode)
        assert torch.equal(cached, expected), (
            f"{name} {mode}: zoo {cached.tolist()} != transformers {expected.tolist()}"
        )


@pytest.mark.parametrize("name", CASES)
def test_left_padded_rows_generate_as_alone(cases, name):
    case = cases(name)
    batch = _generate(case.model, case.inputs, case.settings, "greedy")
    for row, alone_inputs in enumerate(case.rows_alone):
        alone = _generate(case.model, alone_inputs, case.settings, "greedy")
        # decoder-only models return prompt + continuation; encoder-decoders the decoder sequence only
        encoder_decoder = case.model.config.is_encoder_decoder
        new_in_batch = batch[row, 0 if encoder_decoder else case.inputs["input_ids"].shape[-1] :]
        new_alone = alone[0, 0 if encoder_decoder else alone_inputs["input_ids"].shape[-1] :]
        assert torch.equal(new_in_batch[: len(new_alone)], new_alone), f"{name} row {row}"


@pytest.mark.parametrize("mode", ["greedy", "beam"])
@pytest.mark.parametrize("name", CASES)
def test_static_cache_equals_dynamic_and_transformers(cases, name, mode):
    """On each case's left-padded batch. GLM's and UniLM's masks are their own: built over the static
    cache's allocated keys, its unwritten slots masked out."""
    case = cases(name)
    dynamic = _generate(case.model, case.inputs, case.settings, mode)
    static = _generate(case.model, case.inputs, case.settings, mode, cache_implementation="static")
    assert torch.equal(static, dynamic), (
        f"{name} {mode}: static {static.tolist()} != dynamic {dynamic.tolist()}"
    )
    if case.reference is not None:
        expected = _generate(case.reference, case.inputs, case.settings, mode, cache_implementation="static")
        assert torch.equal(static, expected)


@pytest.mark.parametrize("name", [name for name in CASES if "Seq2Seq" in name])
def test_a_sliding_window_cache_is_refused_where_the_mask_needs_every_key(cases, name):
    """GLM's context and UniLM's source stay visible to every later position: a cache that drops the
    earliest keys would decode other tokens, silently, so it is refused by name."""
    case = cases(name)
    config = copy.deepcopy(case.model.config)
    config.sliding_window = 4
    with pytest.raises(UnsupportedCacheError, match=r"needs every cached key .* sliding-window layers"):
        _generate(case.model, case.inputs, case.settings, "greedy", cache=DynamicCache(config=config))


def test_an_argument_forward_does_not_use_is_an_error(cases):
    model = cases("LlamaForCausalLM").model
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(
        TypeError, match=r"LlamaForCausalLM.forward got .*'cache_position'.*valid: attention_mask, cache,"
    ):
        model(input_ids=ids, cache_position=torch.arange(3))
    with pytest.raises(TypeError, match=r"'use_cahce' \(did you mean 'use_cache'\?\)"):
        model(input_ids=ids, use_cahce=False)
    with pytest.raises(TypeError, match="'token_type_ids'"):  # Llama has no token types: not ignored
        model(input_ids=ids, token_type_ids=torch.zeros_like(ids))


def _renaming(method, old: str, new: str):
    def renamed(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        if old in result:
            result[new] = result.pop(old)
        return result

    return renamed


@pytest.mark.parametrize(
    ("name", "hook", "error", "message"),
    [
        # generate feeds forward the cache as kv_cache=
        ("LlamaForCausalLM", "prepare_inputs_for_generation", TypeError,
         r"LlamaForCausalLM.forward got argument\(s\) it does not use: 'kv_cache'"),
        # generate keeps the returned cache under another name between steps
        ("T5ForConditionalGeneration", "_update_model_kwargs_for_generation", RuntimeError,
         "did not hand the cache T5ForConditionalGeneration.forward returned"),
    ],
)  # fmt: skip
def test_the_next_cache_rename_fails_loudly(cases, monkeypatch, name, hook, error, message):
    """The next upstream rename, simulated in each direction: an error, never tokens decoded without history."""
    case = cases(name)
    original = getattr(transformers.GenerationMixin, hook)
    monkeypatch.setattr(transformers.GenerationMixin, hook, _renaming(original, "cache", "kv_cache"))
    with pytest.raises(error, match=message):
        case.model.generate(**case.inputs, **case.settings, max_new_tokens=3)


# Random identifiers, mixed with names a causal LM does take (so both outcomes are drawn).
_IDENTIFIERS = st.one_of(
    st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True),
    st.sampled_from(
        sorted(PASS_THROUGH_KWARGS | {"attention_mask", "cache", "labels", "position_ids", "use_cache"})
    ),
)


@settings(max_examples=150, deadline=None)
@given(names=st.lists(_IDENTIFIERS, min_size=1, max_size=4, unique=True))
def test_any_keyword_a_forward_does_not_take_is_named_in_a_type_error(cases, names):
    """Property: whatever keywords a caller adds, each is taken (declared or transformers' pass-through)
    or the call fails naming every one that is not; no keyword is ever dropped silently."""
    model = cases("GPT2ForCausalLM").model
    ids = torch.tensor([[5, 6, 7]])
    valid = set(inspect.signature(model.forward).parameters) | PASS_THROUGH_KWARGS
    unknown = [
        name for name in names if name not in valid and name not in ("past_key_values", "cache_params")
    ]
    extra = {name: None for name in names if name not in ("input_ids", "inputs_embeds")}
    if not unknown:  # only names it takes (all None): the same logits as without them
        assert torch.equal(model(input_ids=ids, **extra).logits, model(input_ids=ids).logits)
        return
    with pytest.raises(TypeError) as raised:
        model(input_ids=ids, **extra)
    message = str(raised.value)
    assert all(repr(name) in message for name in unknown if name in extra), (names, message)
