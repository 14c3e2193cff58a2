"""BART and mBART against transformers' classes on the same random weights, through the production weight map.

``bart``: post-LN blocks, unscaled embeddings, a fixed decoder start token. ``mbart``: pre-LN blocks with a
final LayerNorm per stack, scaled embeddings, labels shifted by wrapping their last token. Every weight
(norms, positions, ``final_logits_bias`` included) is perturbed so that a wrong mapping shows.
"""

import pytest
import torch
import transformers
from transformers import AutoModelForSeq2SeqLM

import zoo
from zoo.errors import ConfigError
from zoo.models.bart import BartForConditionalGeneration, BartForSequenceClassification, BartModel
from zoo.models.mbart import MBartForConditionalGeneration, MBartForSequenceClassification, MBartModel

TOL = 1e-4
VOCAB = 120
PAD, BOS, EOS = 1, 0, 2
LAYOUTS = ("bart", "mbart")
ZOO_CLASSES = {
    "bart": (BartForConditionalGeneration, BartModel, BartForSequenceClassification),
    "mbart": (MBartForConditionalGeneration, MBartModel, MBartForSequenceClassification),
}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def reference_config(layout: str, **overrides) -> transformers.PreTrainedConfig:
    cls = transformers.BartConfig if layout == "bart" else transformers.MBartConfig
    return cls(
        vocab_size=VOCAB,
        d_model=32,
        encoder_layers=2,
        decoder_layers=3,  # unequal stacks: the layer counts must not be mixed up
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        scale_embedding=layout == "mbart",
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        decoder_start_token_id=EOS,
        forced_eos_token_id=EOS,
        num_labels=3,
        **overrides,
    )


def randomized(model: torch.nn.Module) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor.add_(torch.randn(tensor.shape, generator=generator) * 0.1)
    return model.eval()


def reference_model(layout: str, kind: str = "lm", **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    prefix = "Bart" if layout == "bart" else "MBart"
    suffix = {"lm": "ForConditionalGeneration", "base": "Model", "classifier": "ForSequenceClassification"}[
        kind
    ]
    return randomized(getattr(transformers, prefix + suffix)(reference_config(layout, **overrides)))


@pytest.fixture(scope="module", params=LAYOUTS)
def pair(request, tmp_path_factory):
    reference = reference_model(request.param)
    directory = tmp_path_factory.mktemp(request.param)
    reference.save_pretrained(directory)
    model = zoo.load(directory)
    return reference, model, request.param


def encoder_batch(seed: int = 0, eos: bool = False, side: str = "right") -> dict[str, torch.Tensor]:
    """Three sources of lengths 11, 7, 3, padded on ``side``; ``eos``: each row ends with one eos token."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, VOCAB, (3, 11), generator=generator)
    lengths = torch.tensor([11, 7, 3])
    attention_mask = (torch.arange(11)[None, :] < lengths[:, None]).long()
    if eos:
        input_ids[torch.arange(3), lengths - 1] = EOS
    input_ids = input_ids.masked_fill(attention_mask == 0, PAD)
    if side == "left":  # BART's positions count from the first column, padded or not (as transformers')
        input_ids, attention_mask = input_ids.flip(1), attention_mask.flip(1)
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def labels_batch(seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(3, VOCAB, (3, 8), generator=generator)
    labels[:, 0] = 5  # mBART-50's targets start with the language code
    labels[1, 6:] = -100
    labels[2, 3:] = -100
    return labels


def _max_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    if mask is not None:  # padded positions are not defined by either implementation
        a, b = a[mask.bool()], b[mask.bool()]
    return (a - b).abs().max().item()


def test_config_and_layout_converted(pair):
    reference, model, layout = pair
    expected_class = ZOO_CLASSES[layout][0]
    config = model.config
    assert type(model) is expected_class
    assert config.is_encoder_decoder and config.pre_norm == (layout == "mbart")
    assert (config.num_hidden_layers, config.num_decoder_layers, config.scale_embedding) == (
        2,
        3,
        layout == "mbart",
    )
    assert model.lm_head.weight is model.get_input_embeddings().weight
    assert torch.equal(model.final_logits_bias, reference.final_logits_bias)
    assert model.final_logits_bias.abs().sum() > 0
    assert model.get_num_params() == reference.num_parameters()


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_logits_and_every_hidden_state_match(pair, attn_implementation, side):
    reference, model, _ = pair
    reference.set_attn_implementation(attn_implementation)
    model.set_attn_implementation(attn_implementation)
    batch, labels = encoder_batch(side=side), labels_batch()
    decoder_attention_mask = (labels != -100).long()
    kwargs = dict(
        **batch, labels=labels, decoder_attention_mask=decoder_attention_mask, output_hidden_states=True
    )
    with torch.no_grad():
        expected, actual = reference(**kwargs), model(**kwargs)
    assert actual.logits.shape == expected.logits.shape == (3, 8, VOCAB)
    assert _max_diff(actual.logits, expected.logits, decoder_attention_mask) <= TOL
    assert len(actual.encoder_hidden_states) == len(expected.encoder_hidden_states) == 3
    assert len(actual.decoder_hidden_states) == len(expected.decoder_hidden_states) == 4
    for layer, (a, e) in enumerate(zip(actual.encoder_hidden_states, expected.encoder_hidden_states)):
        assert _max_diff(a, e, batch["attention_mask"]) <= TOL, f"encoder hidden state {layer}"
    for layer, (a, e) in enumerate(zip(actual.decoder_hidden_states, expected.decoder_hidden_states)):
        assert _max_diff(a, e, decoder_attention_mask) <= TOL, f"decoder hidden state {layer}"
    assert abs(actual.loss.item() - expected.loss.item()) <= TOL
    assert actual.loss.item() > 1.0  # a real cross-entropy, not a placeholder


def test_label_shift_equals_transformers(pair):
    _, model, layout = pair
    labels = labels_batch()
    module = (
        transformers.models.bart.modeling_bart
        if layout == "bart"
        else transformers.models.mbart.modeling_mbart
    )
    if layout == "bart":
        expected = module.shift_tokens_right(labels, PAD, EOS)
    else:
        expected = module.shift_tokens_right(labels, PAD)
    assert torch.equal(model.prepare_decoder_input_ids_from_labels(labels), expected)


def test_loss_contract(pair):
    _, model, _ = pair
    batch, labels = encoder_batch(), labels_batch()
    with torch.no_grad():
        mean = model(**batch, labels=labels).loss
        summed = model(**batch, labels=labels, num_items_in_batch=torch.tensor(10)).loss
        model.fused_loss = False
        plain = model(**batch, labels=labels).loss
        del model.fused_loss
        with pytest.raises(TypeError, match="'some_unused_flag'"):  # never silently dropped
            model(**batch, labels=labels, some_unused_flag=True)
    tokens = (labels != -100).sum().item()
    assert abs(summed.item() - mean.item() * tokens / 10) <= 1e-5  # sum / num_items_in_batch
    assert abs(plain.item() - mean.item()) <= 1e-5  # final_logits_bias in the chunked loss too


def _generate(model, batch, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return model.generate(**batch, max_new_tokens=8, do_sample=False, **kwargs)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generation_equals_reference_cached_uncached_and_batched(pair, num_beams):
    reference, model, layout = pair
    batch = encoder_batch()
    # mBART-50 forces the target language code after the start token
    kwargs = {"num_beams": num_beams, **({"forced_bos_token_id": 7} if layout == "mbart" else {})}
    expected = _generate(reference, batch, **kwargs)
    cached = _generate(model, batch, use_cache=True, **kwargs)
    uncached = _generate(model, batch, use_cache=False, **kwargs)
    assert cached.shape == expected.shape and cached.shape[1] > 3
    assert torch.equal(cached, expected)
    assert torch.equal(cached, uncached)
    if layout == "mbart":
        assert (cached[:, 1] == 7).all()
    for row in range(3):
        length = int(batch["attention_mask"][row].sum())
        alone = {k: v[row : row + 1, :length] for k, v in batch.items()}
        single = _generate(model, alone, **kwargs)[0]
        assert torch.equal(single, cached[row, : single.shape[0]]), f"row {row}"
        assert (cached[row, single.shape[0] :] == PAD).all()


def test_cache_is_an_encoder_decoder_cache(pair):
    _, model, _ = pair
    batch = encoder_batch()
    decoder_ids = torch.tensor([[EOS, 5, 6]] * 3)
    with torch.no_grad():
        first = model(**batch, decoder_input_ids=decoder_ids, use_cache=True)
        cache = first.cache
        assert isinstance(cache, transformers.EncoderDecoderCache)
        assert cache.self_attention_cache.get_seq_length() == 3
        assert cache.cross_attention_cache.get_seq_length() == 11
        step = model(
            encoder_outputs=(first.encoder_last_hidden_state,),
            attention_mask=batch["attention_mask"],
            decoder_input_ids=torch.tensor([[7]] * 3),
            cache=cache,
        )
        full = model(**batch, decoder_input_ids=torch.cat([decoder_ids, torch.tensor([[7]] * 3)], dim=1))
    assert _max_diff(step.logits[:, -1], full.logits[:, -1]) <= TOL


def test_save_pretrained_loads_in_plain_transformers(pair, tmp_path):
    reference, model, _ = pair
    model.save_pretrained(tmp_path)  # the transformers layout by default
    exported = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert type(exported) is type(reference)
    expected_state, exported_state = reference.state_dict(), exported.state_dict()
    assert expected_state.keys() == exported_state.keys()
    for name, value in expected_state.items():
        assert torch.equal(exported_state[name], value), name
    batch, labels = encoder_batch(), labels_batch()
    with torch.no_grad():
        assert (
            _max_diff(exported(**batch, labels=labels).logits, reference(**batch, labels=labels).logits)
            == 0.0
        )


def test_zoo_layout_round_trip_through_auto_class(pair, tmp_path):
    _, model, _ = pair
    model.save_pretrained(tmp_path, layout="zoo")
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert type(loaded) is type(model)
    assert torch.equal(loaded.final_logits_bias, model.final_logits_bias)
    batch, labels = encoder_batch(), labels_batch()
    with torch.no_grad():
        assert torch.equal(loaded(**batch, labels=labels).logits, model(**batch, labels=labels).logits)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_base_model_both_directions(layout, tmp_path):
    """BartModel / MBartModel, decoder inputs shifted from input_ids by each layout's rule."""
    reference = reference_model(layout, "base")
    reference.save_pretrained(tmp_path / "reference")
    base = zoo.load(tmp_path / "reference")
    assert type(base) is ZOO_CLASSES[layout][1]
    batch = encoder_batch(eos=True)
    with torch.no_grad():
        actual = base(**batch, output_hidden_states=True)
        wanted = reference(**batch, output_hidden_states=True)
    assert _max_diff(actual.last_hidden_state, wanted.last_hidden_state) <= TOL
    for a, e in zip(actual.decoder_hidden_states, wanted.decoder_hidden_states, strict=True):
        assert _max_diff(a, e) <= TOL
    base.save_pretrained(tmp_path / "exported")
    exported = transformers.AutoModel.from_pretrained(tmp_path / "exported").eval()
    assert type(exported) is type(reference)
    with torch.no_grad():
        assert _max_diff(exported(**batch).last_hidden_state, wanted.last_hidden_state) == 0.0


@pytest.mark.parametrize("layout", LAYOUTS)
def test_sequence_classification_matches_reference(layout, tmp_path):
    """The eos-token classifier on the whole encoder-decoder, loaded from and exported to transformers'."""
    reference = reference_model(layout, "classifier")
    reference.save_pretrained(tmp_path / "reference")
    model = ZOO_CLASSES[layout][2].from_pretrained(tmp_path / "reference")
    batch = encoder_batch(eos=True)
    labels = torch.tensor([0, 2, 1])
    with torch.no_grad():
        actual = model(**batch, labels=labels, output_hidden_states=True)
        expected = reference(**batch, labels=labels, output_hidden_states=True)
    assert actual.logits.shape == (3, 3)
    assert _max_diff(actual.logits, expected.logits) <= TOL
    assert abs(actual.loss.item() - expected.loss.item()) <= TOL
    for a, e in zip(actual.encoder_hidden_states, expected.encoder_hidden_states, strict=True):
        assert _max_diff(a, e, batch["attention_mask"]) <= TOL
    model.save_pretrained(tmp_path / "exported")
    exported = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "exported").eval()
    assert type(exported) is type(reference)
    with torch.no_grad():
        assert _max_diff(exported(**batch).logits, expected.logits) == 0.0


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_checkpoint_without_final_logits_bias_loads_zeros(layout, tmp_path):
    """As transformers (``_keys_to_ignore_on_load_missing``): the bias is zero when a checkpoint lacks it."""
    from safetensors.torch import load_file, save_file

    reference = reference_model(layout)
    reference.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    del tensors["final_logits_bias"]
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    model = zoo.load(tmp_path)
    assert torch.equal(model.final_logits_bias, torch.zeros(1, VOCAB))


UNSUPPORTED = [
    ("bart", {"add_bias_logits": True}, "add_bias_logits=True"),
    ("bart", {"normalize_before": True}, "normalize_before=True"),
    ("bart", {"add_final_layer_norm": True}, "add_final_layer_norm=True"),
    ("bart", {"normalize_embedding": False}, "normalize_embedding=False"),
    ("bart", {"static_position_embeddings": True}, "static_position_embeddings=True"),
    ("bart", {"encoder_layerdrop": 0.1}, "encoder_layerdrop=0.1"),
    ("bart", {"decoder_ffn_dim": 96}, "decoder_ffn_dim=96"),
    ("bart", {"decoder_attention_heads": 2}, "decoder_attention_heads=2"),
    ("bart", {"tie_word_embeddings": False}, "tie_word_embeddings=False"),
    ("mbart", {"normalize_before": False}, "normalize_before=False"),
    ("mbart", {"add_final_layer_norm": False}, "add_final_layer_norm=False"),
]


@pytest.mark.parametrize("layout,change,message", UNSUPPORTED, ids=[m for _, _, m in UNSUPPORTED])
def test_unsupported_config_values_raise_config_error(layout, change, message, tmp_path):
    import json

    config_file = tmp_path / "config.json"  # the config is refused before any weight is read
    data = {**reference_config(layout).to_dict(), **change}
    config_file.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=message) as error:
        zoo.load(tmp_path)
    assert "supported" in str(error.value)


# -- tasks: title-generation through build_trainer; mBART's language codes ---------------------------
def _tiny(config_class, tokenizer, **overrides):
    from zoo.models.bart.family import TINY_CONFIG

    torch.manual_seed(0)
    return config_class(
        **{**TINY_CONFIG, "hidden_size": 32, "intermediate_size": 64},
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        forced_eos_token_id=None,
        **overrides,
    )


def test_title_generation_trains_and_generates_through_build_trainer(tmp_path):
    from tiny_models import wordpiece_tokenizer
    from transformers import Seq2SeqTrainingArguments

    from trainers.task_trainer import build_trainer
    from zoo.models.bart import BartConfig

    tokenizer = wordpiece_tokenizer()
    bos = tokenizer.cls_token_id  # as bart-base's config, generation is forced to start with <s>
    model = BartForConditionalGeneration(
        _tiny(BartConfig, tokenizer, bos_token_id=bos, forced_bos_token_id=bos)
    )
    records = [
        {"source": "the cat sat", "target": "on the mat"},
        {"source": "john lives in paris", "target": "good"},
    ]
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to=[], save_strategy="no", disable_tqdm=True,
        max_steps=30, learning_rate=1e-2, lr_scheduler_type="constant", per_device_train_batch_size=2,
        logging_steps=1, predict_with_generate=True, generation_num_beams=2, generation_max_length=8, seed=0,
    )  # fmt: skip
    trainer = build_trainer(
        "title-generation", model, tokenizer, args, train_records=records, eval_records=records
    )
    target = tokenizer("on the mat", add_special_tokens=False)["input_ids"]
    assert trainer.train_dataset[0]["labels"] == [bos, *target, tokenizer.eos_token_id]  # as generate starts
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses[-1] < 0.1 < losses[0]
    metrics = trainer.evaluate()
    assert metrics["eval_rouge1"] == pytest.approx(1.0)  # beam search through Seq2SeqTrainer
    predictor = trainer.zoo_task.predictor(model, tokenizer)
    assert predictor.predict([r["source"] for r in records], num_beams=2, max_new_tokens=8) == [
        "on the mat",
        "good",
    ]


def bart_tokenizer() -> transformers.BartTokenizer:
    """A tiny byte-level BPE BART tokenizer built here (fairseq's special ids), no download."""
    letters = "abcdefgh"  # one-letter words: the only merges are "Ġ" + letter
    vocab = {"<s>": BOS, "<pad>": PAD, "</s>": EOS, "<unk>": 3, "<mask>": 4, "Ġ": 5}
    for letter in letters:
        vocab[letter] = len(vocab)
        vocab[f"Ġ{letter}"] = len(vocab)
    return transformers.BartTokenizer(vocab=vocab, merges=[("Ġ", letter) for letter in letters])


def test_bart_sources_and_targets_are_framed_as_its_tokenizer_frames_them():
    """<s> source </s> as in pre-training (the tokenizer's own template), and with bart-base's forced <s>
    the labels as ``tokenizer(text_target=...)`` lays them out; T5-style tokenizers stay ``source </s>``."""
    from tiny_models import wordpiece_tokenizer

    from tasks import get_task
    from zoo.models.bart import BartConfig

    tokenizer = bart_tokenizer()
    model = BartForConditionalGeneration(
        _tiny(BartConfig, tokenizer, bos_token_id=BOS, forced_bos_token_id=BOS)
    )
    task = get_task("seq2seq")
    row = task.preprocess([{"source": "a b c", "target": "d e"}], tokenizer, model)[0]
    words = tokenizer("a b c", add_special_tokens=False)["input_ids"]
    assert len(words) == 3 and row["input_ids"] == [BOS, *words, EOS] == tokenizer("a b c")["input_ids"]
    assert row["labels"] == [BOS, *tokenizer("d e", add_special_tokens=False)["input_ids"], EOS]
    assert row["labels"] == tokenizer(text_target="d e")["input_ids"]
    batch = task.predictor(model, tokenizer).format.generation_inputs([words])
    assert batch["input_ids"][0].tolist() == [BOS, *words, EOS]

    other = wordpiece_tokenizer()  # [CLS] text [SEP], no bos: the source keeps the plain framing
    model = BartForConditionalGeneration(_tiny(BartConfig, other))
    row = task.preprocess([{"source": "the cat sat", "target": "good"}], other, model)[0]
    assert row["input_ids"] == [
        *other("the cat sat", add_special_tokens=False)["input_ids"],
        other.eos_token_id,
    ]


def mbart50_tokenizer(**languages) -> transformers.MBart50Tokenizer:
    """A tiny mBART-50 tokenizer built here (fairseq's special ids, the 52 language codes), no download."""
    words = ["the", "a", "cat", "dog", "sat", "on", "mat", "big", "red", "house"]
    vocab = [("<s>", 0.0), ("<unk>", 0.0), ("</s>", 0.0)] + [(f"▁{w}", -1.0 - i) for i, w in enumerate(words)]
    return transformers.MBart50Tokenizer(vocab=vocab, **languages)


def test_mbart_language_codes_in_the_seq2seq_task(tmp_path):
    from transformers import Seq2SeqTrainingArguments

    from tasks import get_task
    from tasks.base import TaskDataError
    from trainers.task_trainer import build_trainer
    from zoo.models.mbart import MBartConfig

    tokenizer = mbart50_tokenizer(src_lang="en_XX", tgt_lang="ro_RO")
    en, ro = tokenizer.convert_tokens_to_ids(["en_XX", "ro_RO"])
    model = MBartForConditionalGeneration(_tiny(MBartConfig, tokenizer))
    task = get_task("seq2seq")
    row = task.preprocess([{"source": "the cat sat", "target": "a big dog"}], tokenizer, model)[0]
    words = tokenizer("the cat sat", add_special_tokens=False)["input_ids"]
    target = tokenizer("a big dog", add_special_tokens=False)["input_ids"]
    # as the tokenizer itself lays them out: [src_lang] source </s> and [tgt_lang] target </s>
    assert row["input_ids"] == [en, *words, EOS] == tokenizer("the cat sat")["input_ids"]
    assert row["labels"] == [ro, *target, EOS] == tokenizer(text_target="a big dog")["input_ids"]
    # mBART's shift: the decoder reads </s> [tgt_lang] target
    decoder_inputs = model.prepare_decoder_input_ids_from_labels(torch.tensor([row["labels"]]))
    assert decoder_inputs[0].tolist() == [EOS, ro, *target]

    predictor = task.predictor(model, tokenizer)
    assert predictor.format.generation_kwargs()["forced_bos_token_id"] == ro
    batch = predictor.format.generation_inputs([words])
    generated = model.generate(**batch, **predictor.format.generation_kwargs(), max_new_tokens=4)
    assert generated[0, :2].tolist() == [EOS, ro]  # the language code follows the start token
    rest = generated[0, 2:].tolist()
    rest = rest[: rest.index(EOS)] if EOS in rest else rest
    assert predictor.format.decode_generated(generated, batch)[0] == [t for t in rest if t != PAD]

    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to=[], predict_with_generate=True
    )
    build_trainer("seq2seq", model, tokenizer, args, train_records=[{"source": "the cat", "target": "a dog"}])
    assert model.generation_config.forced_bos_token_id == ro  # predict_with_generate targets Romanian

    with pytest.raises(TaskDataError, match="tgt_lang"):  # a target language is needed
        task.preprocess([{"source": "a", "target": "b"}], mbart50_tokenizer(src_lang="en_XX"), model)
