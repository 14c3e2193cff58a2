"""GLM against FlagAI's own implementation on the same weights, loaded through the production weight map."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import zoo
from zoo import GLMForSeq2Seq, GLMModel
from zoo.hf_internals import StaticCache

flagai_glm = pytest.importorskip("flagai.model.glm_model", reason="pip install --no-deps flagai==1.8.4")

TOL = 1e-5
MASK, SMASK, GMASK, SOP, EOP = 100, 101, 102, 103, 104
SPECIAL = dict(
    mask_token_id=MASK, smask_token_id=SMASK, gmask_token_id=GMASK, sop_token_id=SOP, eop_token_id=EOP
)
FLAGAI_CONFIG = {  # FlagAI's GLM config.json fields (no model_type), tiny
    "num_layers": 2,
    "vocab_size": 120,
    "hidden_size": 32,
    "num_attention_heads": 4,
    "embedding_dropout_prob": 0.1,
    "attention_dropout_prob": 0.1,
    "output_dropout_prob": 0.1,
    "max_sequence_length": 64,
    "max_memory_length": 0,
    "checkpoint_activations": False,
    "checkpoint_num_layers": 1,
    "parallel_output": True,
    "relative_encoding": False,
    "block_position_encoding": True,
    "output_predict": True,
    "spell_length": None,
    "spell_func": "lstm",
    "attention_scale": 1.0,
}


@pytest.fixture(scope="module")
def flagai_dir(tmp_path_factory):
    """FlagAI's GLMModel with perturbed weights, saved as FlagAI saves it: {"module": state_dict}."""
    directory = tmp_path_factory.mktemp("flagai_glm")
    (directory / "config.json").write_text(json.dumps(FLAGAI_CONFIG))
    torch.manual_seed(0)
    reference = flagai_glm.GLMModel.init_from_json(str(directory / "config.json"))
    with torch.no_grad():
        for param in reference.parameters():
            param.add_(torch.randn_like(param) * 0.2)
    torch.save({"module": reference.state_dict(), "iteration_in_epoch": 0}, directory / "pytorch_model.bin")
    return directory


@pytest.fixture(scope="module")
def reference(flagai_dir):
    model = flagai_glm.GLMModel.init_from_json(str(flagai_dir / "config.json"))
    model.load_weights(str(flagai_dir / "pytorch_model.bin"))  # FlagAI's own loader
    return model.eval()


@pytest.fixture(scope="module")
def zoo_lm(flagai_dir):
    return GLMForSeq2Seq.from_pretrained(flagai_dir, **SPECIAL)


def _positions(length: int, blank_at: int | None = None, blank_length: int = 0) -> torch.Tensor:
    """(2, length + blank_length) GLM positions: the context, then a blank at ``blank_at``."""
    positions = list(range(length)) + [blank_at] * blank_length
    blocks = [0] * length + list(range(1, blank_length + 1))
    return torch.tensor([positions, blocks])


def _case(kind: str):
    """(input_ids, position_ids, attention_mask) in FlagAI's layout; rows differ in sep."""
    torch.manual_seed(1)
    tokens = torch.randint(1, 100, (2, 14))
    if kind == "causal":
        return tokens, torch.stack([_positions(14)] * 2), torch.tensor(0)
    mask_token = {"MASK": MASK, "sMASK": SMASK, "gMASK": GMASK, "matrix": MASK}[kind]
    rows, positions, seps = [], [], []
    for row, (context_length, blank_at) in enumerate([(9, 4), (10, 2)]):
        blank_at = context_length - 1 if kind == "gMASK" else blank_at  # [gMASK] ends the context
        context = tokens[row, :context_length].clone()
        context[blank_at] = mask_token
        blank_length = 14 - context_length
        blank = torch.cat([torch.tensor([SOP]), tokens[row, context_length : 14 - 1]])
        rows.append(torch.cat([context, blank]))
        positions.append(_positions(context_length, blank_at, blank_length))
        seps.append(context_length)
    input_ids, position_ids, sep = torch.stack(rows), torch.stack(positions), torch.tensor(seps)
    if kind == "matrix":  # the same mask, given as FlagAI's (batch, 1, query, key) 0/1 matrix
        ids = torch.arange(14)
        sep = ((ids[None, :] <= ids[:, None])[None] | (ids[None, None, :] < sep[:, None, None])).float()[
            :, None
        ]
    return input_ids, position_ids, sep


@pytest.mark.parametrize("kind", ["causal", "MASK", "sMASK", "gMASK", "matrix"])
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_logits_and_every_hidden_state_match_flagai(kind, attn_implementation, reference, zoo_lm):
    input_ids, position_ids, attention_mask = _case(kind)
    zoo_lm.set_attn_implementation(attn_implementation)
    try:
        with torch.no_grad():
            expected = reference(input_ids, position_ids, attention_mask, return_memory=True)
            actual = zoo_lm(
                input_ids=input_ids,
                position_ids=position_ids,
                attention_mask=attention_mask,
                output_hidden_states=True,
            )
    finally:
        zoo_lm.set_attn_implementation("sdpa")
    assert actual.logits.shape == expected["logits"].shape == (2, 14, 120)
    assert (actual.logits - expected["logits"]).abs().max().item() <= TOL
    # FlagAI's memory: the embeddings, then every block's output (before the final LayerNorm).
    assert len(actual.hidden_states) == len(expected["hidden_states"]) == 3
    for layer, (a, e) in enumerate(zip(actual.hidden_states[:-1], expected["hidden_states"][:-1])):
        # the residual stream grows to ~10-50 here: the tolerance scales with it (fp32 rounding)
        assert (a - e).abs().max().item() <= TOL * max(1.0, e.abs().max().item()), f"hidden state {layer}"
    final_norm = reference.transformer.final_layernorm
    assert (actual.hidden_states[-1] - final_norm(expected["hidden_states"][-1])).abs().max().item() <= TOL


def test_base_model_matches_flagai_hidden_output(flagai_dir, reference):
    model = GLMModel.from_pretrained(flagai_dir)
    input_ids, position_ids, sep = _case("MASK")
    reference.output_predict = False  # FlagAI's GLMModel then returns the final hidden states
    try:
        with torch.no_grad():
            expected = reference(input_ids, position_ids, sep)["logits"]
    finally:
        reference.output_predict = True
    actual = model(input_ids=input_ids, position_ids=position_ids, attention_mask=sep).last_hidden_state
    assert (actual - expected).abs().max().item() <= TOL


@pytest.mark.parametrize("layout", ["safetensors", "hub"])
def test_other_checkpoint_layouts_load_the_same(layout, flagai_dir, zoo_lm, tmp_path):
    state = torch.load(flagai_dir / "pytorch_model.bin", weights_only=True)["module"]
    config = dict(FLAGAI_CONFIG)
    if layout == "hub":  # THUDM/glm-*: model_type "glm", GLMForConditionalGeneration under "glm."
        state = {f"glm.{name}": tensor for name, tensor in state.items()}
        config.update(model_type="glm", architectures=["GLMForConditionalGeneration"])
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(config))
    model = GLMForSeq2Seq.from_pretrained(tmp_path)
    input_ids, position_ids, sep = _case("sMASK")
    with torch.no_grad():
        expected = zoo_lm(input_ids=input_ids, position_ids=position_ids, attention_mask=sep).logits
        actual = model(input_ids=input_ids, position_ids=position_ids, attention_mask=sep).logits
    assert torch.equal(actual, expected)


def test_loss_matches_flagai_seq2seq(flagai_dir, zoo_lm):
    reference = flagai_glm.GLMForSeq2Seq.init_from_json(str(flagai_dir / "config.json"))
    reference.load_weights(str(flagai_dir / "pytorch_model.bin"))
    reference.eval()
    input_ids, position_ids, sep = _case("MASK")
    target_ids = torch.randint(1, 100, input_ids.shape)
    loss_mask = (torch.arange(14)[None] >= sep[:, None]).long()  # the blank part only
    with torch.no_grad():
        expected = reference(
            input_ids=input_ids,
            position_ids=position_ids,
            attention_mask=sep,
            target_ids=target_ids,
            loss_mask=loss_mask,
        )["loss"]
        batch = dict(input_ids=input_ids, position_ids=position_ids, attention_mask=sep)
        from_flagai_batch = zoo_lm(**batch, target_ids=target_ids, loss_mask=loss_mask).loss
        labels = target_ids.masked_fill(loss_mask == 0, -100)
        summed = zoo_lm(**batch, labels=labels, num_items_in_batch=torch.tensor(2)).loss
    assert abs(from_flagai_batch.item() - expected.item()) <= TOL
    assert abs(summed.item() - expected.item() * loss_mask.sum().item() / 2) <= 1e-4
    assert expected.item() > 1.0


def _flagai_greedy_blank(reference, context: torch.Tensor, steps: int) -> list[int]:
    """FlagAI's glm_sample_sequence, greedy: the context once, then [sop] and each token with its memory."""
    length = context.shape[0]
    blank_at = int(torch.isin(context, torch.tensor([MASK, SMASK, GMASK])).nonzero()[0])
    with torch.no_grad():
        out = reference(context[None], _positions(length)[None], torch.tensor([length]), return_memory=True)
        mems, token, generated = out["hidden_states"], SOP, []
        for step in range(steps):
            position_ids = torch.tensor([[[blank_at], [step + 1]]])
            out = reference(
                torch.tensor([[token]]), position_ids, torch.tensor([0]), mems=mems, return_memory=True
            )
            mems = out["hidden_states"]
            token = int(out["logits"][0, -1].argmax())
            generated.append(token)
    return generated


def test_blank_filling_generate_matches_flagai_greedy_decode(reference, zoo_lm):
    torch.manual_seed(2)
    contexts = torch.randint(1, 100, (2, 8))
    contexts[0, 3], contexts[1, 7] = MASK, GMASK
    inputs = zoo_lm.blank_infilling_inputs(contexts)
    kwargs = dict(max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0)
    cached = zoo_lm.generate(**inputs, **kwargs)
    uncached = zoo_lm.generate(**inputs, use_cache=False, **kwargs)
    static = zoo_lm.generate(**inputs, cache_implementation="static", **kwargs)
    assert torch.equal(cached, uncached)
    assert torch.equal(static, cached)
    assert torch.equal(cached[:, :9], inputs["input_ids"])
    for row in range(2):
        assert cached[row, 9:].tolist() == _flagai_greedy_blank(reference, contexts[row], 6)


@pytest.mark.parametrize("static", [False, True])
def test_cached_forward_equals_full_forward(static, zoo_lm):
    input_ids, position_ids, sep = _case("MASK")
    cache = StaticCache(config=zoo_lm.config, max_cache_len=20) if static else None
    with torch.no_grad():
        full = zoo_lm(input_ids=input_ids, position_ids=position_ids, attention_mask=sep).logits
        head = zoo_lm(
            input_ids=input_ids[:, :11],
            position_ids=position_ids[..., :11],
            attention_mask=sep,
            cache=cache,
            use_cache=True,
        )
        tail = zoo_lm(
            input_ids=input_ids[:, 11:],
            position_ids=position_ids[..., 11:],
            attention_mask=sep,
            cache=head.cache,
        )
    assert (torch.cat([head.logits, tail.logits], dim=1) - full).abs().max().item() <= TOL


def test_export_loads_into_flagai(zoo_lm, tmp_path):
    base = GLMModel.from_pretrained(zoo_lm.config.name_or_path)
    base.save_reference(tmp_path / "flagai")
    config = json.loads((tmp_path / "flagai" / "config.json").read_text())
    assert {k: config[k] for k in FLAGAI_CONFIG} == FLAGAI_CONFIG
    state = load_file(tmp_path / "flagai" / "model.safetensors")
    torch.save({"module": state}, tmp_path / "flagai" / "pytorch_model.bin")
    exported = flagai_glm.GLMModel.init_from_json(str(tmp_path / "flagai" / "config.json"))
    assert set(state) == set(exported.state_dict())  # FlagAI's loader is not strict: check the names
    exported.load_weights(str(tmp_path / "flagai" / "pytorch_model.bin"))
    exported.eval()
    input_ids, position_ids, sep = _case("gMASK")
    with torch.no_grad():
        expected = zoo_lm(input_ids=input_ids, position_ids=position_ids, attention_mask=sep).logits
        actual = exported(input_ids, position_ids, sep)["logits"]
    assert (actual - expected).abs().max().item() <= TOL

    zoo_lm.save_reference(tmp_path / "hub")  # the head class writes the Hub layout (glm. prefix)
    assert all(name.startswith("glm.") for name in load_file(tmp_path / "hub" / "model.safetensors"))
    reloaded = GLMForSeq2Seq.from_pretrained(tmp_path / "hub")
    with torch.no_grad():
        again = reloaded(input_ids=input_ids, position_ids=position_ids, attention_mask=sep).logits
    assert torch.equal(again, expected)


def test_config_errors_name_the_field(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({**FLAGAI_CONFIG, "relative_encoding": True}))
    with pytest.raises(zoo.ConfigError, match="relative_encoding"):
        GLMForSeq2Seq.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="mask tokens"):
        GLMForSeq2Seq(
            zoo.GLMConfig(
                vocab_size=120, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, **SPECIAL
            )
        ).blank_infilling_inputs(torch.ones(1, 4, dtype=torch.long))


def _flagai_greedy_fill(reference, context: list[int], steps: int, end_token: int) -> list[list[int]]:
    """FlagAI's glm_generate_sample, greedy: the context once, then each blank in turn by
    glm_sample_sequence ([sop], then each token fed with the memory until end_token or steps tokens)."""
    blanks = [i for i, token in enumerate(context) if token in (MASK, SMASK, GMASK)]
    spans = []
    with torch.no_grad():
        tokens = torch.tensor([context])
        out = reference(
            tokens, _positions(len(context))[None], torch.tensor([len(context)]), return_memory=True
        )
        mems = out["hidden_states"]
        for blank_at in blanks:
            blank = [SOP]
            while len(blank) - 1 < steps:
                position_ids = torch.tensor([[[blank_at], [len(blank)]]])
                out = reference(
                    torch.tensor([[blank[-1]]]),
                    position_ids,
                    torch.tensor([0]),
                    mems=mems,
                    return_memory=True,
                )
                mems = out["hidden_states"]
                token = int(out["logits"][0, -1].argmax())
                if token == end_token:
                    break
                blank.append(token)
            spans.append(blank[1:])
    return spans


def _contexts() -> list[list[int]]:
    """Three contexts of different lengths with 1 to 3 blanks."""
    torch.manual_seed(3)
    rows = [torch.randint(1, 100, (n,)).tolist() for n in (11, 7, 9)]
    rows[0][2], rows[0][6] = MASK, SMASK
    rows[1][-1] = GMASK
    rows[2][1], rows[2][4], rows[2][-1] = MASK, MASK, GMASK
    return rows


def test_fill_blanks_fills_every_blank_as_flagai(flagai_dir, reference, zoo_lm):
    contexts, steps = _contexts(), 4
    # An [eop] the model emits, so that blanks end at [eop] as well as at max_new_tokens.
    eop = _flagai_greedy_fill(reference, contexts[2], steps, end_token=-1)[0][1]
    expected = [_flagai_greedy_fill(reference, row, steps, end_token=eop) for row in contexts]
    ends = [len(span) < steps for row in expected for span in row]
    assert any(ends) and not all(ends)  # both ways a blank ends are covered
    model = GLMForSeq2Seq.from_pretrained(flagai_dir, **{**SPECIAL, "eop_token_id": eop})
    assert model.fill_blanks(contexts, max_new_tokens=steps) == expected  # a padded batch
    assert model.fill_blanks(contexts, max_new_tokens=steps, cache_implementation="static") == expected
    assert model.fill_blanks([contexts[2]], max_new_tokens=steps, use_cache=False) == [expected[2]]
    spans = zoo_lm.fill_blanks(torch.tensor([contexts[1]]), max_new_tokens=3)  # no [eop] emitted
    assert spans == [[_flagai_greedy_blank(reference, torch.tensor(contexts[1]), 3)]]


@pytest.mark.parametrize("num_beams", [1, 2])
def test_padded_batch_generates_each_row_as_alone(num_beams, zoo_lm):
    contexts = _contexts()
    kwargs = dict(max_new_tokens=5, do_sample=False, num_beams=num_beams, eos_token_id=None, pad_token_id=0)
    inputs = zoo_lm.blank_infilling_inputs(contexts)
    assert inputs["attention_mask"].sum(-1).tolist() == [len(row) + 1 for row in contexts]
    batch = zoo_lm.generate(**inputs, **kwargs)[:, -5:]
    assert torch.equal(zoo_lm.generate(**inputs, **kwargs, cache_implementation="static")[:, -5:], batch)
    padded = inputs["input_ids"][:, :-1]  # the same batch as a left-padded tensor with its mask
    again = zoo_lm.blank_infilling_inputs(padded, attention_mask=inputs["attention_mask"][:, :-1])
    assert all(torch.equal(again[key], value) for key, value in inputs.items())
    for row, context in enumerate(contexts):
        alone = zoo_lm.generate(**zoo_lm.blank_infilling_inputs([context]), **kwargs)[0, -5:]
        assert batch[row].tolist() == alone.tolist(), row
