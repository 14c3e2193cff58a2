"""Lean decoding: a static KV cache with a compiled decode step for every generative class, and assisted
generation (a draft model, or prompt lookup) with zoo models on either side, both giving exactly the
tokens of plain greedy decoding.

The quality cost of bf16 and int8 weights is measured on real weights by ``benchmarks/decode_quality.py``
(bf16 matmuls run ~25x slower than fp32 on an AVX2-only CPU: even a short SmolLM2 passage takes longer
than this suite affords).
"""

from __future__ import annotations

import copy

import pytest
import torch
import transformers
from test_drift_guard import CASES, _noisy
from torch._dynamo.backends.registry import lookup_backend
from torch._dynamo.utils import counters

import zoo
from zoo.decoding import compile_config_for_decoding
from zoo.errors import UnsupportedGenerationError
from zoo.family import families

GENERATIVE = sorted(
    {cls.__name__ for family in families().values() for cls in family.lm_heads.values() if cls.can_generate()}
)
# A sliding-window static cache counts its fill level in a Python int until the window is full:
# a second graph (with that int symbolic), as transformers' own Mistral.
SLIDING = "LlamaForCausalLM-mistral-sliding-window"
# inductor's C++ code generation costs 15-40 s per model on 2 cores: one class runs through it, the
# others through aot_eager (the same captured graph, run eagerly), as in tests/test_graphs.py.
INDUCTOR = ("LlamaForCausalLM",)
NEW_TOKENS = 8


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    built = {}

    def get(name: str):
        if name not in built:
            built[name] = CASES[name](tmp_path_factory.mktemp(name))
        return built[name]

    return get


def _counting_backend(name: str):
    """A torch.compile backend (a function: CompileConfig deep-copies its fields, and a function copies as
    itself) that counts the graphs it compiles and the calls they get: proof that the decode steps ran
    compiled, not only that something was compiled."""
    backend, counts = lookup_backend(name), {"graphs": 0, "calls": 0}

    def compile_counted(graph_module, example_inputs, **options):  # (mode: cudagraphs, moot on the CPU)
        counts["graphs"] += 1
        compiled = backend(graph_module, example_inputs)

        def run(*args):
            counts["calls"] += 1
            return compiled(*args)

        return run

    return compile_counted, counts


def test_every_generative_class_declares_a_fullgraph_decode_step():
    declared = {name: zoo.registered_classes()[name]._can_compile_fullgraph for name in GENERATIVE}
    assert GENERATIVE and all(declared.values()), declared


@pytest.mark.parametrize("name", [*GENERATIVE, SLIDING])
def test_static_cache_compiled_decode_equals_eager_dynamic_greedy(cases, name):
    case = cases(name)
    options = dict(**case.settings, do_sample=False, max_new_tokens=NEW_TOKENS)
    eager = case.model.generate(**case.inputs, **options)
    backend, counts = _counting_backend("inductor" if name in INDUCTOR else "aot_eager")
    config = compile_config_for_decoding(backend=backend)
    torch._dynamo.reset()
    counters.clear()
    compiled = case.model.generate(
        **case.inputs, **options, cache_implementation="static", compile_config=config
    )
    assert torch.equal(compiled, eager), f"{name}: {compiled.tolist()} != {eager.tolist()}"
    # (an encoder-decoder returns the decoder's start token and the new ones; a decoder, prompt + new)
    prompt = 1 if case.model.config.is_encoder_decoder else case.inputs["input_ids"].shape[-1]
    new = compiled.shape[-1] - prompt
    # the prefill runs eagerly, every later step through a compiled graph: one for all of them
    assert new >= 2 and counts["calls"] == new - 1, (new, counts)
    # (Gemma's layer_types give it sliding-window layers too)
    sliding = name == SLIDING or "sliding_attention" in (
        getattr(case.model.config, "layer_types", None) or ()
    )
    assert counts["graphs"] == counters["stats"]["unique_graphs"] == (2 if sliding else 1)
    with torch._dynamo.config.patch(error_on_recompile=True):  # a second call: no recompilation
        again = case.model.generate(
            **case.inputs, **options, cache_implementation="static", compile_config=config
        )
    assert torch.equal(again, eager)


def _llama_pair(directory, depths=(3, 1)):
    """A zoo target and draft (Llamas of different depth sharing the vocabulary), and transformers' Llama
    with each one's weights."""
    models = []
    for seed, depth in enumerate(depths):
        torch.manual_seed(seed)
        config = transformers.LlamaConfig(
            vocab_size=61, hidden_size=32, intermediate_size=64, num_hidden_layers=depth,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, eos_token_id=2,
        )  # fmt: skip
        reference = _noisy(transformers.LlamaForCausalLM(config), seed=seed)
        reference.save_pretrained(directory / str(depth))
        models.append((zoo.LlamaForCausalLM.from_pretrained(directory / str(depth)).eval(), reference))
    return models


def _forward_calls(model):
    calls = []
    return calls, model.register_forward_pre_hook(lambda *_: calls.append(1))


@pytest.mark.parametrize(
    ("target_side", "draft_side"), [("zoo", "zoo"), ("zoo", "transformers"), ("transformers", "zoo")]
)
def test_assisted_generation_with_a_smaller_draft_gives_the_target_s_greedy_tokens(
    tmp_path, target_side, draft_side
):
    (target, target_reference), (draft, draft_reference) = _llama_pair(tmp_path)
    target = target if target_side == "zoo" else target_reference
    draft = draft if draft_side == "zoo" else draft_reference
    ids = torch.tensor([[11, 23, 35, 47, 19, 8]])
    options = dict(do_sample=False, max_new_tokens=12, pad_token_id=0)
    own = target.generate(ids, **options)
    assert torch.equal(own, target_reference.generate(ids, **options))
    assisted = target.generate(ids, assistant_model=draft, **options)
    assert torch.equal(assisted, own), f"{assisted.tolist()} != {own.tolist()}"


@pytest.mark.parametrize("name", [name for name in CASES if "Seq2Seq" not in name])
def test_assisted_and_prompt_lookup_decoding_equal_greedy_and_accept_drafts(cases, name):
    """Every causal LM and T5, with a draft of its own family (its weights, perturbed: it agrees with the
    target on some tokens, not all) and with prompt lookup: the target's tokens, in fewer target calls
    than tokens once a draft is accepted (the cache cropped back after each rejection)."""
    case = cases(name)
    target, row = case.model, case.rows_alone[0]
    options = dict(**case.settings, do_sample=False, max_new_tokens=10)
    own = target.generate(**row, **options)
    draft = _noisy(copy.deepcopy(target), seed=5, scale=0.02)
    calls, hook = _forward_calls(target)
    try:
        assisted = target.generate(**row, **options, assistant_model=draft)
        draft_calls = len(calls)
        calls.clear()
        looked_up = target.generate(**row, **options, prompt_lookup_num_tokens=3)
    finally:
        hook.remove()
    assert torch.equal(assisted, own), f"{name}: {assisted.tolist()} != {own.tolist()}"
    assert torch.equal(looked_up, own), f"{name}: {looked_up.tolist()} != {own.tolist()}"
    new = own.shape[-1] - (0 if target.config.is_encoder_decoder else row["input_ids"].shape[-1])
    assert draft_calls < new, f"{name}: {draft_calls} target calls for {new} tokens: no draft accepted"


@pytest.mark.parametrize("name", [name for name in CASES if "Seq2Seq" in name])
@pytest.mark.parametrize("mode", ["draft", "prompt lookup"])
def test_assisted_generation_is_refused_where_the_model_lays_out_its_own_inputs(cases, name, mode):
    """GLM's block positions and UniLM's target segments cannot be extended over draft tokens by
    transformers' rule: refused by name, never different tokens."""
    case = cases(name)
    extra = {"assistant_model": case.model} if mode == "draft" else {"prompt_lookup_num_tokens": 3}
    with pytest.raises(UnsupportedGenerationError, match="assisted generation and prompt lookup"):
        case.model.generate(**case.rows_alone[0], **case.settings, do_sample=False, max_new_tokens=4, **extra)
