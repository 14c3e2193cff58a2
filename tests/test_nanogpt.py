"""zoo.GPT (nanoGPT): parity with transformers' GPT-2, the seeds' API, its own tokenizer, the wrapper.

nanoGPT's architecture is GPT-2's, so the reference is transformers' GPT2LMHeadModel with the same
weights, loaded through the production weight maps (the GPT-2 layout, and nanoGPT's ``ckpt.pt``).
"""

import sys

import pytest
import torch
import torch.nn.functional as F
import transformers
from reference_models import padded_batch, tiny_reference
from test_trainer import training_args
from transformers import AutoModelForCausalLM, Trainer

import zoo
from zoo.errors import ConfigError

TOL = 1e-5
CORPUS = [
    "The cat sat on the mat. The dog sat on the log.\n",
    "Héllo wörld! Spaces   and\ttabs, numbers 12345, and émojis 🙂 stay exact.\n",
    "To be, or not to be: that is the question.\n",
] * 30
TRICKY = "  Leading spaces, ünïcödé, 日本語, tabs\t\tand\nnewlines 🙂 , ' quotes ' . end  "


@pytest.fixture(scope="module")
def tokenizer():
    return zoo.train_bpe_tokenizer(CORPUS, vocab_size=320, min_frequency=2)


@pytest.fixture(scope="module")
def reference_dir(tokenizer, tmp_path_factory):
    """A tiny transformers GPT-2 with nanoGPT's exact GELU, the trained tokenizer saved beside it."""
    directory = tmp_path_factory.mktemp("gpt2_gelu")
    reference = tiny_reference(
        "gpt2",
        vocab_size=len(tokenizer),
        activation_function="gelu",
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    reference.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _max_diff(a, b, mask=None):
    if mask is not None:
        a, b = a[mask.bool()], b[mask.bool()]
    return (a - b).abs().max().item()


# -- parity with transformers' GPT-2 ----------------------------------------------------------------
@pytest.mark.parametrize("activation", ["gelu", "gelu_new"])
def test_logits_equal_transformers_gpt2(activation, tmp_path):
    reference = tiny_reference("gpt2", activation_function=activation)
    reference.save_pretrained(tmp_path)
    model = zoo.GPT.from_pretrained(tmp_path)
    assert model.config.hidden_act == activation
    batch = padded_batch(0, left=True)
    with torch.no_grad():
        expected = reference(**batch).logits
        actual = model(**batch).logits
        positional = model(batch["input_ids"][:1])
    assert actual.shape == expected.shape == (3, 12, 211)
    assert _max_diff(actual, expected, batch["attention_mask"]) <= TOL
    assert _max_diff(positional, expected[:1]) <= TOL  # first row is unpadded
    assert expected.abs().max().item() > 0.1  # not a trivially zero output


def _nanogpt_checkpoint(reference: transformers.GPT2LMHeadModel, compiled: bool) -> dict:
    """What nanoGPT's train.py saves for the same weights: nn.Linear layout (Conv1D transposed)."""
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    prefix = "_orig_mod." if compiled else ""
    state = {}
    for name, tensor in reference.state_dict().items():
        state[prefix + name] = tensor.t().contiguous() if name.endswith(conv1d) else tensor.clone()
    config = reference.config
    model_args = dict(
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_embd=config.n_embd,
        block_size=config.n_positions,
        bias=True,
        vocab_size=config.vocab_size,
        dropout=0.0,
    )
    optimizer = {"state": {0: {"exp_avg": torch.zeros(2)}}, "param_groups": [{"lr": 6e-4}]}
    return {
        "model": state,
        "optimizer": optimizer,
        "model_args": model_args,
        "iter_num": 5,
        "best_val_loss": torch.tensor(2.5),
        "config": {"dataset": "shakespeare_char", "compile": compiled},
    }


@pytest.mark.parametrize("compiled", [False, True])
def test_nanogpt_checkpoint_loads_with_logits_equal_reference(compiled, tmp_path):
    reference = tiny_reference("gpt2", activation_function="gelu")
    checkpoint = _nanogpt_checkpoint(reference, compiled)
    torch.save(checkpoint, tmp_path / "ckpt.pt")
    model = zoo.GPT.from_nanogpt_checkpoint(tmp_path / "ckpt.pt")
    assert model.config.n_layer == 3 and model.config.hidden_act == "gelu"
    batch = padded_batch(0, left=True)
    with torch.no_grad():
        diff = _max_diff(model(**batch).logits, reference(**batch).logits, batch["attention_mask"])
    assert diff <= TOL
    # The weight map both ways: exported names and tensors are nanoGPT's own.
    exported = model.nanogpt_state_dict()
    original = {name.removeprefix("_orig_mod."): t for name, t in checkpoint["model"].items()}
    assert sorted(exported) == sorted(original)
    assert all(torch.equal(exported[name], original[name]) for name in original)


def test_bias_free_gpt_round_trips_through_nanogpt_names():
    config = zoo.GPTConfig(vocab_size=50, n_layer=2, n_head=4, n_embd=32, block_size=16, bias=False)
    torch.manual_seed(0)
    model = zoo.GPT(config).eval()
    state = model.nanogpt_state_dict()
    assert not [name for name in state if name.endswith(".bias")]
    assert "transformer.h.1.attn.c_attn.weight" in state and "lm_head.weight" in state
    assert state["transformer.h.0.attn.c_attn.weight"].shape == (96, 32)  # nn.Linear (out, in)
    with torch.device("meta"):
        loaded = zoo.GPT(config)
    report = loaded.load_nanogpt_state_dict(state)
    assert len(report.loaded) == len(state) - 1  # lm_head.weight is the tied alias of wte
    ids = torch.randint(0, 50, (2, 9))
    assert torch.equal(loaded.eval()(ids), model(ids))
    with pytest.raises(ConfigError, match="bias=False"):
        model.save_reference("/nonexistent-dir-never-written")
    incomplete = {name: t for name, t in state.items() if name != "transformer.h.1.mlp.c_fc.weight"}
    with pytest.raises(zoo.WeightsMismatchError, match=r"missing \(1\): transformer.h.1.mlp.c_fc.weight"):
        zoo.GPT(config).load_nanogpt_state_dict(incomplete)


# -- the seeds' model API ---------------------------------------------------------------------------
def test_config_takes_nanogpt_names_and_switches(tmp_path):
    config = zoo.GPTConfig(n_layer=2, n_head=4, n_embd=32, block_size=16, bias=False, dropout=0.1)
    assert (config.num_hidden_layers, config.num_attention_heads, config.hidden_size) == (2, 4, 32)
    assert config.max_position_embeddings == 16 and config.n_embd == 32
    assert (config.attention_bias, config.mlp_bias, config.norm_bias) == (False, False, False)
    assert config.hidden_dropout == config.attention_dropout == config.embedding_dropout == 0.1
    defaults = zoo.GPTConfig()
    assert (defaults.vocab_size, defaults.block_size, defaults.hidden_act) == (50304, 1024, "gelu")
    config.save_pretrained(tmp_path)
    reloaded = transformers.AutoConfig.from_pretrained(tmp_path)
    assert type(reloaded) is zoo.GPTConfig and reloaded.to_diff_dict() == config.to_diff_dict()
    with pytest.raises(ConfigError, match="n_embed"):
        zoo.GPTConfig.from_nanogpt({"n_embed": 32})


@pytest.fixture(scope="module")
def gpt(reference_dir):
    return zoo.GPT.from_pretrained(reference_dir)


def test_positional_call_returns_logits_keyword_call_the_standard_output(gpt):
    ids = torch.randint(0, len(gpt.tokenizer), (2, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = gpt(ids)
        output = gpt(input_ids=ids)
        with_labels = gpt(input_ids=ids, labels=ids)
        positional_with_labels = gpt(ids, labels=ids)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 10, gpt.config.vocab_size)
    assert isinstance(output, transformers.modeling_outputs.CausalLMOutputWithPast) and output.loss is None
    assert torch.equal(logits, output.logits)
    vocab = gpt.config.vocab_size
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), ids[:, 1:].reshape(-1))
    assert abs(with_labels.loss.item() - expected.item()) <= 1e-6
    assert positional_with_labels.loss.item() == with_labels.loss.item()
    with pytest.raises(TypeError, match="by keyword"):
        gpt(ids, torch.ones_like(ids))


def test_num_params_and_model_name(gpt, reference_dir):
    reference = transformers.GPT2LMHeadModel.from_pretrained(reference_dir)
    vocab, positions, width, layers = len(gpt.tokenizer), 128, 64, 3
    # embeddings + per block (qkv, out, up, down weights and biases, two norms) + final norm; head tied
    expected = (vocab + positions) * width + layers * (12 * width**2 + 13 * width) + 2 * width
    assert gpt.get_num_params() == reference.num_parameters() == expected == 178_752
    assert gpt.get_num_params(non_embedding=True) == expected - positions * width
    assert gpt.model_name == str(reference_dir)
    assert (
        zoo.GPT(zoo.GPTConfig(vocab_size=8, n_layer=1, n_head=2, n_embd=8, block_size=4)).model_name == "GPT"
    )


def test_generate_text_is_greedy_generation_decoded(gpt):
    prompt = "The cat sat"
    text = gpt.generate(prompt, max_new_tokens=12)
    ids = gpt.tokenizer(prompt, return_tensors="pt")["input_ids"]
    tokens = gpt.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=gpt.tokenizer.eos_token_id)
    uncached = gpt.generate(ids, max_new_tokens=12, do_sample=False, use_cache=False)
    assert isinstance(text, str) and text.startswith(prompt) and len(text) > len(prompt)
    assert text == gpt.tokenizer.decode(tokens[0], skip_special_tokens=True)
    assert torch.equal(tokens, uncached)
    assert gpt.generate(prompt, max_new_tokens=12, return_full_text=False) == text[len(prompt) :]
    with pytest.raises(ValueError, match="context of 128 positions"):
        gpt.generate(prompt, max_new_tokens=200)


# -- the tokenizer belongs to the model --------------------------------------------------------------
def test_trained_tokenizer_round_trips_and_saves_with_the_model(tokenizer, gpt, tmp_path):
    ids = tokenizer(TRICKY)["input_ids"]
    assert tokenizer.decode(ids) == TRICKY
    assert len(tokenizer("The cat sat on the mat.")["input_ids"]) < len(
        "The cat sat on the mat."
    )  # merges learnt
    assert tokenizer.convert_ids_to_tokens(tokenizer.eos_token_id) == "<|endoftext|>"

    gpt.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "tokenizer.json").is_file()
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "saved")
    assert type(reloaded) is zoo.GPT and reloaded.tokenizer is not None
    assert reloaded.tokenizer(TRICKY)["input_ids"] == ids
    assert reloaded.tokenizer.decode(ids) == TRICKY
    assert reloaded.generate("The cat sat", max_new_tokens=6) == gpt.generate("The cat sat", max_new_tokens=6)

    tokenizer.backend_tokenizer.save(str(tmp_path / "tokenizer.json"))
    from_file = zoo.load_tokenizer(tmp_path / "tokenizer.json")
    assert from_file(TRICKY)["input_ids"] == ids and from_file.decode(ids) == TRICKY
    assert from_file.eos_token_id == tokenizer.eos_token_id


def test_train_tokenizer_from_files(tmp_path):
    (tmp_path / "corpus.txt").write_text("".join(CORPUS), encoding="utf-8")
    from_files = zoo.train_bpe_tokenizer(files=[tmp_path / "corpus.txt"], vocab_size=320)
    from_texts = zoo.train_bpe_tokenizer(["".join(CORPUS)], vocab_size=320)
    assert from_files(TRICKY)["input_ids"] == from_texts(TRICKY)["input_ids"]
    with pytest.raises(TypeError, match="files="):
        zoo.train_bpe_tokenizer(str(tmp_path / "corpus.txt"))


def test_tiktoken_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # makes `import tiktoken` raise ImportError
    with pytest.raises(zoo.MissingDependencyError, match="pip install tiktoken") as error:
        zoo.tiktoken_tokenizer("gpt2")
    assert isinstance(error.value, ImportError)


def test_text_generation_without_tokenizer_says_what_to_do():
    model = zoo.GPT(zoo.GPTConfig(vocab_size=8, n_layer=1, n_head=2, n_embd=8, block_size=4))
    with pytest.raises(ValueError, match="no tokenizer"):
        model.generate("hello")


# -- the same interface for any transformers causal LM -------------------------------------------------
def test_wrapper_gives_transformers_gpt2_the_same_interface(gpt, reference_dir):
    wrapper = zoo.wrap(reference_dir)
    assert isinstance(wrapper.model, transformers.GPT2LMHeadModel)
    ids = torch.randint(0, len(gpt.tokenizer), (2, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert _max_diff(wrapper(ids), gpt(ids)) <= TOL
        loss = wrapper(input_ids=ids, labels=ids).loss
        assert abs(loss.item() - gpt(input_ids=ids, labels=ids).loss.item()) <= TOL
    prompt = "To be, or"
    assert wrapper.generate(prompt, max_new_tokens=12) == gpt.generate(prompt, max_new_tokens=12)
    assert wrapper.get_num_params() == gpt.get_num_params()
    assert wrapper.model_name == gpt.model_name == str(reference_dir)
    in_memory = zoo.CausalLMWrapper(wrapper.model, gpt.tokenizer)
    assert in_memory.generate(prompt, max_new_tokens=4) == gpt.generate(prompt, max_new_tokens=4)


# -- training ---------------------------------------------------------------------------------------
def test_trainer_lowers_the_loss_and_peft_wraps_it(tokenizer, tmp_path):
    from peft import LoraConfig, get_peft_model

    stream = tokenizer("".join(CORPUS))["input_ids"]
    length = 32
    dataset = [
        {"input_ids": torch.tensor(stream[i : i + length]), "labels": torch.tensor(stream[i : i + length])}
        for i in range(0, len(stream) - length, length // 2)
    ]
    config = zoo.GPTConfig(vocab_size=len(tokenizer), n_layer=2, n_head=4, n_embd=64, block_size=length)
    torch.manual_seed(0)
    model = zoo.GPT(config, tokenizer=tokenizer)
    args = training_args(tmp_path, learning_rate=3e-3, max_steps=8)
    trainer = Trainer(model=model, args=args, train_dataset=dataset)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 8
    assert losses[0] == pytest.approx(torch.log(torch.tensor(float(len(tokenizer)))).item(), abs=0.5)
    assert losses[-1] < 0.8 * losses[0], losses  # 5.60 -> 4.09 when written
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses

    model.eval()
    lora = get_peft_model(model, LoraConfig(target_modules=["qkv"], r=4, task_type="CAUSAL_LM"))
    batch = dataset[0]["input_ids"][None]
    with torch.no_grad():
        assert torch.equal(lora(input_ids=batch).logits, model(batch))  # LoRA starts as the identity
    assert lora.generate(input_ids=batch[:, :8], max_new_tokens=4, do_sample=False).shape == (1, 12)


def test_trainer_eval_loss_equals_the_model_loss(tmp_path):
    """Trainer counts the target tokens for ``num_items_in_batch`` from ``loss_type``; GPT's class name
    does not say ForCausalLM, so it declares it (the count then skips the first, unpredicted position)."""
    import transformers

    torch.manual_seed(0)
    model = zoo.GPT(zoo.GPTConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  max_position_embeddings=32)).eval()  # fmt: skip
    ids = torch.randint(0, 64, (4, 12))
    rows = [{"input_ids": row, "labels": row} for row in ids]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to=[], per_device_eval_batch_size=4
    )
    trainer = transformers.Trainer(model=model, args=args, eval_dataset=rows)
    with torch.no_grad():
        expected = model(input_ids=ids, labels=ids).loss.item()
    assert model.loss_type == "ForCausalLM"
    assert abs(trainer.evaluate()["eval_loss"] - expected) < 1e-6
