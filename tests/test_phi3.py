"""The Phi-3 family against transformers' Phi3 classes, same weights both ways through the weight map.

Phi-3 checkpoints fuse q / k / v (``qkv_proj``, the zoo's ``attn.qkv`` as is) and gate / up
(``gate_up_proj``, split into the zoo's ``mlp.gate`` and ``mlp.up``), and scale RoPE with LongRoPE,
whose factors switch at ``original_max_position_embeddings``: checked below on both sides of it.
"""

import json

import pytest
import torch
import transformers
from huggingface_hub import ModelCard
from reference_models import padded_batch
from safetensors.torch import load_file

import zoo
from auto_loader import CATALOG
from auto_loader.cards import render_card, tasks_for
from tasks import get_task
from tasks.heads import head_class, supported_heads
from trainers.lora import apply_lora
from zoo.models.phi3 import PHI3, Phi3Config, Phi3ForCausalLM

VOCAB = 211
ORIGINAL = 16  # LongRoPE's switch point in the tiny configs
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)
LONGROPE = dict(
    max_position_embeddings=64,
    original_max_position_embeddings=ORIGINAL,
    rope_scaling={
        "type": "longrope",  # the legacy spelling real Phi-3 checkpoints use
        "short_factor": [1.0 + 0.05 * i for i in range(8)],
        "long_factor": [1.5 + 0.5 * i for i in range(8)],
    },
)
REFERENCES = {
    "phi3": {},
    "phi3-longrope": LONGROPE,
    "phi3-sliding": dict(sliding_window=5, tie_word_embeddings=True),
}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _randomize(model, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.02)


def _reference(kind: str, model_class=transformers.Phi3ForCausalLM, **extra):
    torch.manual_seed(0)
    reference = model_class(transformers.Phi3Config(**{**COMMON, **REFERENCES[kind], **extra}))
    _randomize(reference)
    return reference.eval()


@pytest.fixture(scope="module", params=list(REFERENCES))
def pair(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(request.param)
    reference = _reference(request.param)
    reference.save_pretrained(directory)
    return request.param, reference, zoo.load(directory)


def _ids(length: int, rows: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randint(3, VOCAB, (rows, length), generator=torch.Generator().manual_seed(seed))


# -- transformers checkpoint -> zoo ----------------------------------------------------------------------
def test_a_transformers_checkpoint_loads_with_the_fused_tensors_split(pair):
    kind, reference, model = pair
    assert type(model) is Phi3ForCausalLM and model.config.reference_model_type == "phi3"
    intermediate = COMMON["intermediate_size"]
    for ours, theirs in zip(model.model.layers, reference.model.layers):
        gate_up = theirs.mlp.gate_up_proj.weight
        assert torch.equal(ours.mlp.gate.weight, gate_up[:intermediate])
        assert torch.equal(ours.mlp.up.weight, gate_up[intermediate:])
        assert (
            ours.mlp.gate.weight.untyped_storage().data_ptr()
            != ours.mlp.up.weight.untyped_storage().data_ptr()
        )
        assert torch.equal(ours.attn.qkv.weight, theirs.self_attn.qkv_proj.weight)
    assert model.config.sliding_window == (5 if kind == "phi3-sliding" else None)
    assert (model.lm_head.weight is model.model.embed_tokens.weight) == (kind == "phi3-sliding")


@pytest.mark.parametrize("left", [True, False], ids=["left-padded", "right-padded"])
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_logits_hidden_states_and_loss_match_on_padded_batches(pair, attn_implementation, left):
    kind, reference, model = pair
    reference.set_attn_implementation(attn_implementation)
    model.set_attn_implementation(attn_implementation)
    batch = padded_batch(0, left=left)
    with torch.no_grad():
        expected = reference(**batch, output_hidden_states=True)
        actual = model(**batch, output_hidden_states=True)
    keep = batch["attention_mask"].bool()
    assert (actual.logits - expected.logits)[keep].abs().max().item() <= 1e-4
    assert len(actual.hidden_states) == len(expected.hidden_states) == COMMON["num_hidden_layers"] + 1
    for a, e in zip(actual.hidden_states, expected.hidden_states):
        assert (a - e)[keep].abs().max().item() <= 1e-4
    labels = batch["input_ids"].masked_fill(~keep, -100)
    with torch.no_grad():
        loss, reference_loss = model(**batch, labels=labels).loss, reference(**batch, labels=labels).loss
    assert abs(loss.item() - reference_loss.item()) <= 1e-5


def test_longrope_switches_factors_at_the_original_length_as_transformers(tmp_path):
    reference = _reference("phi3-longrope")
    reference.save_pretrained(tmp_path)
    model = zoo.load(tmp_path)
    assert model.config.rope_parameters["rope_type"] == "longrope"
    assert model.config.rope_parameters["original_max_position_embeddings"] == ORIGINAL
    # longer, shorter, longer again: the frequencies switch each way; exactly at the limit is still short
    results = {}
    for length in (40, 10, ORIGINAL, ORIGINAL + 1, 40):
        ids = _ids(length, seed=length)
        with torch.no_grad():
            expected, actual = reference(ids).logits, model(ids).logits
        assert (actual - expected).abs().max().item() <= 1e-4, length
        results[length] = actual
    # the long factors really change the logits: the first 10 tokens of the 40-token run, alone, differ
    with torch.no_grad():
        prefix = model(_ids(40, seed=40)[:, :10]).logits
    assert (prefix - results[40][:, :10]).abs().max().item() > 1e-3
    assert model.model.rotary.attention_scaling == reference.model.rotary_emb.attention_scaling > 1.0


def test_greedy_generation_matches_cached_uncached_and_left_padded(pair):
    kind, reference, model = pair
    # 20 new tokens after 12 prompt tokens cross ORIGINAL = 16: the long-RoPE case recomputes there
    batch = padded_batch(0, left=True)
    kwargs = {"max_new_tokens": 20, "do_sample": False, "pad_token_id": 0}
    expected = reference.generate(**batch, **kwargs)
    assert torch.equal(model.generate(**batch, **kwargs), expected)
    assert torch.equal(model.generate(**batch, **kwargs, use_cache=False), expected)
    single = batch["input_ids"][:1]
    assert torch.equal(model.generate(single, **kwargs), reference.generate(single, **kwargs))


def test_generation_past_the_longrope_switch_drops_the_cache_once(tmp_path):
    reference = _reference("phi3-longrope")
    reference.save_pretrained(tmp_path)
    model = zoo.load(tmp_path)
    seen = []
    handle = model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    try:
        out = model.generate(_ids(10, rows=1), max_new_tokens=10, do_sample=False, pad_token_id=0)
    finally:
        handle.remove()
    assert torch.equal(
        out, reference.generate(_ids(10, rows=1), max_new_tokens=10, do_sample=False, pad_token_id=0)
    )
    # prompt, one token a step, the whole sequence once where it first exceeds ORIGINAL, one a step again
    assert seen == [10, *[1] * 6, ORIGINAL + 1, 1, 1]


# -- zoo -> transformers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(REFERENCES))
def test_default_save_loads_in_plain_transformers(kind, tmp_path):
    reference_config = transformers.Phi3Config(**{**COMMON, **REFERENCES[kind]})
    torch.manual_seed(0)
    model = Phi3ForCausalLM(Phi3Config.from_reference(reference_config.to_dict())).eval()
    _randomize(model, seed=3)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "phi3" and saved["architectures"] == ["Phi3ForCausalLM"]
    plain, info = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert type(plain) is transformers.Phi3ForCausalLM
    assert not any(info.values()), info
    intermediate = COMMON["intermediate_size"]
    gate_up = plain.model.layers[1].mlp.gate_up_proj.weight
    assert torch.equal(gate_up[:intermediate], model.model.layers[1].mlp.gate.weight)
    assert torch.equal(gate_up[intermediate:], model.model.layers[1].mlp.up.weight)
    for length in (12, 40) if kind == "phi3-longrope" else (12,):
        ids = _ids(length, seed=length)
        with torch.no_grad():
            assert (plain.eval()(ids).logits - model(ids).logits).abs().max().item() <= 1e-4
    assert torch.equal(zoo.load(tmp_path)(_ids(12)).logits, model(_ids(12)).logits)


def test_round_trip_gives_back_the_transformers_tensors(pair, tmp_path):
    kind, reference, model = pair
    model.save_pretrained(tmp_path)
    reloaded = transformers.Phi3ForCausalLM.from_pretrained(tmp_path)
    original = reference.state_dict()
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, original[name]), name
    assert reloaded.config.rope_parameters == reference.config.rope_parameters
    for field in ("original_max_position_embeddings", "sliding_window", "rms_norm_eps", "resid_pdrop"):
        assert getattr(reloaded.config, field) == getattr(reference.config, field), field


def test_the_zoo_layout_and_a_reference_state_dict_load_too(pair, tmp_path):
    kind, reference, model = pair
    model.set_attn_implementation("sdpa")  # the default a fresh load gets
    model.save_pretrained(tmp_path, layout="zoo")
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "zoo_phi3"
    assert torch.equal(zoo.load(tmp_path)(_ids(9)).logits, model(_ids(9)).logits)
    fresh = Phi3ForCausalLM(model.config).eval()
    fresh.load_state_dict(reference.state_dict())  # transformers' names, as Trainer's resume passes them
    assert torch.equal(fresh(_ids(9)).logits, model(_ids(9)).logits)


def test_a_checkpoint_with_a_wrong_gate_up_shape_names_it(tmp_path):
    reference = _reference("phi3", intermediate_size=80)
    reference.save_pretrained(tmp_path)
    wrong = Phi3Config.from_reference({**reference.config.to_dict(), "intermediate_size": 96})
    with pytest.raises(
        zoo.WeightsMismatchError,
        match=r"gate_up_proj.weight: checkpoint \(160, 64\), model expects \(192, 64\)",
    ):
        Phi3ForCausalLM.from_pretrained(tmp_path, config=wrong)


# -- heads --------------------------------------------------------------------------------------------------
def test_every_head_kind_builds_and_returns_a_loss():
    assert supported_heads("phi3") == (
        "causal-lm", "seq2seq", "sequence-labeling", "sequence-labeling-crf", "sequence-classification", "embedding",
    )  # fmt: skip
    config = Phi3Config(**COMMON, num_labels=3)
    ids = _ids(7)
    mask = torch.ones_like(ids)
    mask[1, -2:] = 0
    for head in supported_heads("phi3"):
        torch.manual_seed(0)
        model = head_class("phi3", head)(config)
        if head == "sequence-classification":
            out = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 2]))
        elif head.startswith("sequence-labeling"):
            labels = torch.randint(0, 3, ids.shape).masked_fill(mask == 0, -100)
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
        elif head == "embedding":
            out = model(
                input_ids=ids,
                attention_mask=mask,
                pair_input_ids=ids.flip(0),
                labels=torch.tensor([0.2, 0.9]),
            )
        else:
            out = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100))
        assert out.loss.ndim == 0 and torch.isfinite(out.loss) and out.loss > 0, head
        out.loss.backward()


@pytest.mark.parametrize(
    ("head", "reference_class"),
    [
        ("sequence-classification", transformers.Phi3ForSequenceClassification),
        ("sequence-labeling", transformers.Phi3ForTokenClassification),
    ],
)
def test_classification_heads_match_transformers_both_ways(head, reference_class, tmp_path):
    labels = {"id2label": {0: "a", 1: "b", 2: "c"}, "label2id": {"a": 0, "b": 1, "c": 2}}
    reference = _reference("phi3-longrope", reference_class, **labels)
    reference.save_pretrained(tmp_path / "reference")
    model = zoo.load(tmp_path / "reference")
    assert type(model) is head_class("phi3", head)
    batch = padded_batch(0, left=False)
    with torch.no_grad():
        expected, actual = reference(**batch).logits, model.eval()(**batch).logits
    if head == "sequence-labeling":
        keep = batch["attention_mask"].bool()
        expected, actual = expected[keep], actual[keep]
    assert (actual - expected).abs().max().item() <= 1e-4
    model.save_pretrained(tmp_path / "zoo")
    plain, info = reference_class.from_pretrained(tmp_path / "zoo", output_loading_info=True)
    assert not any(info.values()), info
    with torch.no_grad():
        assert torch.equal(plain.eval()(**batch).logits, reference(**batch).logits)


def test_lora_defaults_wrap_the_attention_projections():
    torch.manual_seed(0)
    model = Phi3ForCausalLM(Phi3Config(**COMMON)).eval()
    ids = _ids(9)
    with torch.no_grad():
        before = model(ids).logits
    lora = apply_lora(model)
    targeted = {n.rsplit(".lora_A", 1)[0] for n, _ in lora.named_parameters() if ".lora_A." in n}
    assert targeted and all(t.endswith(("attn.qkv", "attn.out")) for t in targeted)
    assert len(targeted) == 2 * COMMON["num_hidden_layers"]
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():
        assert torch.equal(lora(input_ids=ids).logits, before)  # B starts at zero
    assert PHI3.lora_targets == (("attn.qkv", "attn.out"), ("mlp.gate", "mlp.up", "mlp.down"))


# -- config --------------------------------------------------------------------------------------------------
def test_the_default_config_is_phi_3_mini():
    config = Phi3Config()
    reference = transformers.Phi3Config()
    assert (config.vocab_size, config.hidden_size, config.intermediate_size) == (32064, 3072, 8192)
    assert config.to_reference("Phi3ForCausalLM").to_dict() | {"transformers_version": None} == (
        reference.to_dict() | {"architectures": ["Phi3ForCausalLM"], "transformers_version": None}
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4}), "rope_type.*default, longrope"),
        (dict(rope_parameters={"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.75}),
         r"partial_rotary_factor.*supported: 1.0"),
        (dict(rope_parameters={"rope_type": "longrope", "rope_theta": 1e4, "short_factor": [1.0] * 3,
                               "long_factor": [1.0] * 8}), r"short_factor.*8 entries, got 3"),
    ],
)  # fmt: skip
def test_what_the_zoo_does_not_implement_is_refused_by_field(change, message):
    with pytest.raises(zoo.ConfigError, match=message):
        Phi3Config(**{**COMMON, **change})


def test_reference_values_without_a_zoo_meaning_are_refused(tmp_path):
    reference = transformers.Phi3Config(**COMMON, embd_pdrop=0.1).to_dict()
    with pytest.raises(zoo.ConfigError, match=r"embd_pdrop=0.1 is not supported \(only 0.0\)"):
        Phi3Config.from_reference(reference)
    partial = transformers.Phi3Config(**COMMON, partial_rotary_factor=0.5).to_dict()
    with pytest.raises(zoo.ConfigError, match="partial_rotary_factor"):
        Phi3Config.from_reference(partial)
    biased = Phi3Config(**COMMON, attention_bias=True)
    with pytest.raises(zoo.ConfigError, match=r"attention_bias=True.*cannot be expressed as a phi3 config"):
        biased.to_reference("Phi3ForCausalLM")


# -- the catalog ---------------------------------------------------------------------------------------------
def test_the_catalog_entry_and_its_card():
    entry = CATALOG["phi-3-mini"]
    assert entry.family == "phi3" and entry.hub_id == "microsoft/Phi-3-mini-4k-instruct"
    assert entry.license == "mit" and entry.supported_heads() == supported_heads("phi3")
    config = PHI3.config_class(**PHI3.tiny_config, vocab_size=97, pad_token_id=0)
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    for task_name in tasks_for(entry):
        model = head_class("phi3", get_task(task_name).head)(config).eval()
        with torch.no_grad():
            model(input_ids=ids, attention_mask=torch.ones_like(ids))
    text = entry.card_path.read_text(encoding="utf-8")
    assert text == str(render_card(entry)), "model_cards/ is stale: run python -m auto_loader.cards"
    card = ModelCard(text)
    assert card.data.license == "mit" and card.data.base_model == entry.hub_id
    assert "tests/test_phi3.py" in card.text


def test_an_adapter_on_the_fused_gate_up_projection_is_refused_in_the_transformers_naming(tmp_path):
    """transformers stores gate and up as one tensor: an adapter on either part has no exact form there."""
    config = Phi3Config(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    with pytest.raises(zoo.AdapterConversionError, match=r"mlp\.gate.*mlp\.up are one tensor.*gate_up_proj"):
        zoo.save_adapter(apply_lora(Phi3ForCausalLM(config), mlp=True), tmp_path / "mlp")
    saved = zoo.save_adapter(apply_lora(Phi3ForCausalLM(config), mlp=True), tmp_path / "zoo", layout="zoo")
    assert (saved / "adapter_model.safetensors").is_file()
    zoo.save_adapter(apply_lora(Phi3ForCausalLM(config)), tmp_path / "attention")  # q/k/v: one tensor too
    state = load_file(tmp_path / "attention" / "adapter_model.safetensors")
    assert {key.split(".")[-3] for key in state} == {"qkv_proj", "o_proj"}
