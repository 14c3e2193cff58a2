"""T5 against transformers' T5ForConditionalGeneration on both layouts, through the production weight map.

``t5``: ReLU feed-forward, head tied to the embedding and fed the decoder output scaled by
d_model**-0.5. ``t5-v1.1``: gated-GELU feed-forward, untied unscaled head (FLAN-T5's layout).
"""

import pytest
import torch
import transformers
from transformers import AutoModelForSeq2SeqLM, Seq2SeqTrainer, Seq2SeqTrainingArguments

import zoo

TOL = 1e-5
VOCAB = 211
LAYOUTS = ("t5", "t5-v1.1")


def tiny_t5_reference(
    layout: str, decoder_layers: int | None = None
) -> transformers.T5ForConditionalGeneration:
    torch.manual_seed(0)
    gated = layout == "t5-v1.1"
    config = transformers.T5Config(
        vocab_size=VOCAB,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=decoder_layers,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        feed_forward_proj="gated-gelu" if gated else "relu",
        tie_word_embeddings=not gated,
        decoder_start_token_id=0,
    )
    model = transformers.T5ForConditionalGeneration(config)
    if gated:  # transformers 5 builds T5 tied; a separate lm_head is what v1.1 checkpoints hold
        model.lm_head.weight = torch.nn.Parameter(model.shared.weight.detach().clone())
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # distinct values everywhere (norms, the head), so a wrong mapping cannot hide
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    return model.eval()


@pytest.fixture(scope="module", params=LAYOUTS)
def pair(request, tmp_path_factory):
    reference = tiny_t5_reference(request.param)
    directory = tmp_path_factory.mktemp(request.param)
    reference.save_pretrained(directory)
    return reference, zoo.T5ForConditionalGeneration.from_pretrained(directory), request.param


def encoder_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Three sources of lengths 12, 7, 3, right-padded with the pad id 0."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(2, VOCAB, (3, 12), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 7:] = 0
    attention_mask[2, 3:] = 0
    return {"input_ids": input_ids.masked_fill(attention_mask == 0, 0), "attention_mask": attention_mask}


def labels_batch(seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(2, VOCAB, (3, 9), generator=generator)
    labels[1, 6:] = -100
    labels[2, 4:] = -100
    return labels


def _max_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    if mask is not None:  # padded positions are not defined by either implementation
        a, b = a[mask.bool()], b[mask.bool()]
    return (a - b).abs().max().item()


def test_config_and_layout_converted(pair):
    reference, model, layout = pair
    config = model.config
    assert config.is_encoder_decoder and config.decoder_start_token_id == 0 and config.pad_token_id == 0
    if layout == "t5":
        assert config.tie_word_embeddings and config.scale_decoder_outputs
        assert (config.mlp_type, config.hidden_act) == ("mlp", "relu")
        assert model.lm_head.weight is model.get_input_embeddings().weight
    else:
        assert not config.tie_word_embeddings and not config.scale_decoder_outputs
        assert (config.mlp_type, config.hidden_act) == ("gated", "gelu_new")
        assert torch.equal(model.lm_head.weight, reference.lm_head.weight)
        assert not torch.equal(model.lm_head.weight, model.get_input_embeddings().weight)
    assert model.get_num_params() == reference.num_parameters()


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_logits_and_every_hidden_state_match(pair, attn_implementation):
    reference, model, _ = pair
    reference.set_attn_implementation(attn_implementation)
    model.set_attn_implementation(attn_implementation)
    batch = encoder_batch()
    labels = labels_batch()
    decoder_attention_mask = (labels != -100).long()
    with torch.no_grad():
        kwargs = dict(
            **batch, labels=labels, decoder_attention_mask=decoder_attention_mask, output_hidden_states=True
        )
        expected = reference(**kwargs)
        actual = model(**kwargs)
    assert actual.logits.shape == expected.logits.shape == (3, 9, VOCAB)
    assert _max_diff(actual.logits, expected.logits, decoder_attention_mask) <= TOL
    assert len(actual.encoder_hidden_states) == len(expected.encoder_hidden_states) == 3
    assert len(actual.decoder_hidden_states) == len(expected.decoder_hidden_states) == 3
    for layer, (a, e) in enumerate(zip(actual.encoder_hidden_states, expected.encoder_hidden_states)):
        assert _max_diff(a, e, batch["attention_mask"]) <= TOL, f"encoder hidden state {layer}"
    for layer, (a, e) in enumerate(zip(actual.decoder_hidden_states, expected.decoder_hidden_states)):
        assert _max_diff(a, e, decoder_attention_mask) <= TOL, f"decoder hidden state {layer}"
    assert (
        _max_diff(
            actual.encoder_last_hidden_state, expected.encoder_last_hidden_state, batch["attention_mask"]
        )
        <= TOL
    )
    assert abs(actual.loss.item() - expected.loss.item()) <= TOL
    assert actual.loss.item() > 1.0  # a real cross-entropy, not a placeholder


def test_loss_contract(pair):
    _, model, _ = pair
    batch, labels = encoder_batch(), labels_batch()
    with torch.no_grad():
        mean = model(**batch, labels=labels).loss
        summed = model(**batch, labels=labels, num_items_in_batch=torch.tensor(10)).loss
        shifted = model(**batch, decoder_input_ids=model._shift_right(labels), labels=labels).loss
        without = model(**batch, decoder_input_ids=model._shift_right(labels))
        with pytest.raises(TypeError, match="'some_unused_flag'"):  # never silently dropped
            model(**batch, labels=labels, some_unused_flag=True)
    tokens = (labels != -100).sum().item()
    assert abs(summed.item() - mean.item() * tokens / 10) <= 1e-5  # sum / num_items_in_batch
    assert torch.equal(mean, shifted)
    assert without.loss is None and without.encoder_hidden_states is None
    assert model(**batch, labels=labels, return_dict=False)[0].shape == ()


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generation_equals_reference(pair, num_beams):
    reference, model, _ = pair
    batch = encoder_batch()
    kwargs = {"max_new_tokens": 12, "do_sample": False, "num_beams": num_beams}
    expected = reference.generate(**batch, **kwargs)
    actual = model.generate(**batch, **kwargs)
    assert actual.shape == expected.shape and actual.shape[1] > 2
    assert torch.equal(actual, expected)


def test_cached_equals_uncached(pair):
    _, model, _ = pair
    batch = encoder_batch(seed=3)
    cached = model.generate(**batch, max_new_tokens=12, do_sample=False, use_cache=True)
    uncached = model.generate(**batch, max_new_tokens=12, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("cache_implementation", [None, "static"])
def test_generation_with_more_decoder_than_encoder_layers(tmp_path, cache_implementation):
    """The cache is sized by the decoder's layer count (transformers 5.24's own T5 raises an IndexError in
    cached generation when the counts differ): cached == uncached == transformers uncached."""
    reference = tiny_t5_reference("t5-v1.1", decoder_layers=3)
    reference.save_pretrained(tmp_path)
    model = zoo.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert (model.config.num_hidden_layers, model.config.num_decoder_layers) == (2, 3)
    assert model.config.get_text_config(decoder=True).num_hidden_layers == 3
    assert model.config.get_text_config(encoder=True).num_hidden_layers == 2
    batch = encoder_batch(seed=3)
    # the tiny model's favourite token is the pad / start id 0: suppressed, the continuations vary
    kwargs = {"max_new_tokens": 12, "min_new_tokens": 12, "do_sample": False, "suppress_tokens": [0]}
    cached = model.generate(**batch, **kwargs, cache_implementation=cache_implementation)
    uncached = model.generate(**batch, **kwargs, use_cache=False)
    expected = reference.generate(**batch, **kwargs, use_cache=False)
    assert len(set(cached[:, 1:].flatten().tolist())) > 2  # not one repeated token
    assert torch.equal(cached, uncached) and torch.equal(cached, expected)


def test_cache_is_an_encoder_decoder_cache(pair):
    _, model, _ = pair
    batch = encoder_batch()
    decoder_ids = torch.tensor([[0, 5, 6]] * 3)
    with torch.no_grad():
        first = model(**batch, decoder_input_ids=decoder_ids, use_cache=True)
        cache = first.cache
        assert isinstance(cache, transformers.EncoderDecoderCache)
        assert cache.self_attention_cache.get_seq_length() == 3
        assert cache.cross_attention_cache.get_seq_length() == 12
        step = model(
            encoder_outputs=(first.encoder_last_hidden_state,),
            attention_mask=batch["attention_mask"],
            decoder_input_ids=torch.tensor([[7]] * 3),
            cache=cache,
        )
        full = model(**batch, decoder_input_ids=torch.cat([decoder_ids, torch.tensor([[7]] * 3)], dim=1))
    assert _max_diff(step.logits[:, -1], full.logits[:, -1]) <= TOL


def test_save_reference_loads_in_plain_transformers(pair, tmp_path):
    reference, model, _ = pair
    model.save_reference(tmp_path)
    exported = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
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


def test_save_pretrained_round_trip_through_auto_class(pair, tmp_path):
    _, model, _ = pair
    model.save_pretrained(tmp_path, layout="zoo")  # the transformers layout: tests/test_layout.py
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert type(loaded) is zoo.T5ForConditionalGeneration
    assert loaded.config.tie_word_embeddings == model.config.tie_word_embeddings
    batch, labels = encoder_batch(), labels_batch()
    with torch.no_grad():
        assert torch.equal(loaded(**batch, labels=labels).logits, model(**batch, labels=labels).logits)


def test_base_model_loads_the_reference_checkpoint(tmp_path):
    reference = tiny_t5_reference("t5")
    reference.save_pretrained(tmp_path)
    base = zoo.T5Model.from_pretrained(tmp_path)
    expected = transformers.T5Model.from_pretrained(tmp_path).eval()
    batch = encoder_batch()
    decoder_ids = torch.tensor([[0, 4, 9, 11]] * 3)
    with torch.no_grad():
        actual = base(**batch, decoder_input_ids=decoder_ids).last_hidden_state
        wanted = expected(**batch, decoder_input_ids=decoder_ids).last_hidden_state
    assert _max_diff(actual, wanted) <= TOL


def test_seq2seq_trainer_lowers_the_loss(tmp_path):
    """Reverse a short sequence: a few Seq2SeqTrainer steps on a fresh v1.1-layout model."""
    torch.manual_seed(0)
    config = zoo.T5Config(
        vocab_size=32,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        head_dim=8,
        intermediate_size=64,
        mlp_type="gated",
        hidden_act="gelu_new",
        tie_word_embeddings=False,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        hidden_dropout=0.0,
        attention_dropout=0.0,
    )
    model = zoo.T5ForConditionalGeneration(config)
    generator = torch.Generator().manual_seed(0)
    data = []
    for _ in range(64):
        source = torch.randint(2, 32, (8,), generator=generator)
        data.append(
            {"input_ids": source, "attention_mask": torch.ones(8, dtype=torch.long), "labels": source.flip(0)}
        )
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path),
        use_cpu=True,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        learning_rate=3e-3,
        lr_scheduler_type="constant",
        seed=0,
        disable_tqdm=True,
        max_steps=12,
        per_device_train_batch_size=16,
    )
    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=data)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.1
