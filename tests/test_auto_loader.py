"""AutoLoader end to end: (task, model name) -> head + tokenizer + predictor, from a local directory
or the Hub (the project's local Hub-protocol server), and the errors a user meets on the way."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from huggingface_hub import HfApi
from huggingface_hub import constants as hub_constants
from tiny_models import fit_full_batch, save_tiny_checkpoint

from auto_loader import (
    CATALOG,
    AutoLoader,
    CatalogEntry,
    ModelBundle,
    ModelUnavailableError,
    make_model,
    register_model,
)
from auto_loader import registry as model_registry
from tasks import LabelError, get_task
from tasks.heads import UnsupportedHeadError
from zoo.errors import ConfigError, UnknownNameError

# One family per task so that every task and every family is exercised once or more.
RECORDS = {
    "title-generation": [{"source": "john lives in paris", "target": "john paris"}],
    "poetry-generation": [{"source": "我爱北京", "target": "天安门"}],
    "seq2seq": [{"source": "the cat sat on the mat", "target": "cat mat"}],
    "lm": [{"text": "the cat sat on the mat"}, {"text": "the dog ran in the park"}],
    "masklm": [{"text": "the cat sat on the mat"}, {"text": "the dog ran in the park"}],
    "ner": [{"tokens": ["john", "lives", "in", "paris"], "tags": ["B-PER", "O", "O", "B-LOC"]}],
    "ner-crf": [{"tokens": ["张", "三", "住", "在", "上", "海"], "tags": ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC"]}],
    "classification": [{"text": "i love this film", "label": "pos"}, {"text": "i hate this movie", "label": "neg"}],
    "semantic-matching": [
        {"text": "the cat sat", "text_pair": "a cat sat", "label": "1"},
        {"text": "the cat sat", "text_pair": "john works at acme", "label": "0"},
    ],
    "embedding": [
        {"text": "the cat sat", "text_pair": "a cat sat", "score": 0.9},
        {"text": "the cat sat", "text_pair": "john works at acme", "score": 0.1},
    ],
}  # fmt: skip
LABELS = {
    "ner": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
    "ner-crf": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
    "classification": ["neg", "pos"],
    "semantic-matching": ["0", "1"],
}
PREDICT = {
    "title-generation": ["john lives in london", "", "the cat " * 300],
    "poetry-generation": ["我爱北京", "", "天" * 600],
    "seq2seq": ["the cat sat on the mat", "", "the dog " * 300],
    "lm": ["the cat", "", "the dog " * 300],
    "masklm": ["the [MASK] sat", "", "the [MASK] " + "cat " * 600],
    "ner": ["john lives in paris", "", "john " * 600],
    "ner-crf": ["张三住在上海", "", "张" * 600],
    "classification": ["i love this film", "", "bad " * 600],
    "semantic-matching": [("the cat sat", "a cat sat"), ("", ""), ("cat " * 300, "dog " * 300)],
    "embedding": ["the cat sat", "", "cat " * 600],
}
FAMILY_FOR_TASK = {
    "title-generation": "t5",
    "poetry-generation": "gpt2",
    "seq2seq": "bert",
    "lm": "llama",
    "masklm": "roberta",
    "ner": "bert",
    "ner-crf": "gpt",
    "classification": "llama",
    "semantic-matching": "bert",
    "embedding": "bert",
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """``model_dir`` as a user has it: one pre-trained tiny checkpoint per family, ``tiny-<family>``."""
    root = tmp_path_factory.mktemp("checkpoints")
    for family in ("bert", "roberta", "gpt2", "llama", "gpt", "t5", "glm"):
        save_tiny_checkpoint(family, root / f"tiny-{family}")
    return root


def _train(loader: AutoLoader, task_name: str, steps: int = 15) -> tuple[float, float]:
    task, model, tokenizer = loader.task, loader.get_model(), loader.get_tokenizer()
    dataset = task.preprocess(
        RECORDS[task_name], tokenizer, model, max_length=32, labels=LABELS.get(task_name)
    )
    collator = task.collator(tokenizer, model)
    torch.manual_seed(0)
    losses = fit_full_batch(model, collator, dataset, steps=steps, lr=1e-2)
    model.eval()
    return losses[0], losses[-1]


@pytest.mark.parametrize("task_name", list(FAMILY_FOR_TASK))
def test_every_task_loads_trains_and_predicts_from_a_local_directory(task_name, model_dir):
    family = FAMILY_FOR_TASK[task_name]
    overrides = {"labels": LABELS[task_name]} if task_name in LABELS else {}
    loader = AutoLoader(task_name, f"tiny-{family}", model_dir=model_dir, **overrides)
    assert loader.directory == model_dir / f"tiny-{family}" and loader.family == family
    model = loader.get_model()
    assert type(model).__name__ and model.config.model_type.removeprefix("zoo_") == family
    if task_name in LABELS:
        assert model.config.id2label == dict(enumerate(LABELS[task_name]))

    first, last = _train(loader, task_name)
    assert last < 0.8 * first, (first, last)

    predictor = loader.get_predictor()
    inputs = PREDICT[task_name]
    kwargs = {"max_new_tokens": 4, "num_beams": 2} if get_task(task_name).head == "seq2seq" else {}
    if task_name == "lm":
        kwargs = {"max_new_tokens": 4}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictions = predictor.predict(inputs, batch_size=2, **kwargs)
    assert len(predictions) == len(inputs)
    assert any("truncated" in str(w.message) for w in caught), [str(w.message) for w in caught]
    head = get_task(task_name).head
    if head == "seq2seq" or task_name == "lm":
        assert all(isinstance(p, str) for p in predictions)
    elif head.startswith("sequence-labeling"):
        assert predictions[1] == []
        for text, entities in zip(inputs, predictions):
            for entity in entities:
                assert text[entity["start"] : entity["end"]] == entity["text"]
                assert entity["entity"] in {"PER", "LOC"}
    elif head == "sequence-classification":
        assert all(p["label"] in LABELS[task_name] and 0.0 <= p["score"] <= 1.0 for p in predictions)
    elif head == "embedding":
        assert predictions.shape == (3, model.config.hidden_size)
    elif head == "masked-lm":
        assert predictions[1] == [] and len(predictions[0]) == 1 and len(predictions[0][0]) == 5


def test_a_fine_tuned_variant_is_preferred(model_dir, tmp_path):
    base = AutoLoader("classification", "tiny-bert", model_dir=model_dir, labels=["neg", "pos"])
    _train(base, "classification", steps=3)
    base.get_model().save_pretrained(tmp_path / "tiny-bert-classification")
    base.get_tokenizer().save_pretrained(tmp_path / "tiny-bert-classification")
    (tmp_path / "tiny-bert").symlink_to(model_dir / "tiny-bert")

    loader = AutoLoader("classification", "tiny-bert", model_dir=tmp_path)
    assert loader.directory == tmp_path / "tiny-bert-classification"
    assert loader.get_model().config.id2label == {0: "neg", 1: "pos"}
    batch = base.get_tokenizer()(["i love it", "bad movie"], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(loader.get_model()(**batch).logits, base.get_model()(**batch).logits)
    # A model directory given directly prefers its sibling variant in the same way.
    assert (
        AutoLoader("classification", str(tmp_path / "tiny-bert")).directory
        == tmp_path / "tiny-bert-classification"
    )


def test_base_checkpoint_initialises_only_the_head(model_dir, caplog):
    with caplog.at_level(logging.WARNING):
        loader = AutoLoader("ner", "tiny-bert", model_dir=model_dir, class_num=5)
    assert loader.get_model().config.num_labels == 5
    assert "classifier.weight" in caplog.text


# ------------------------------------------------------------------------------------------ the Hub
def _push(directory, repo_id, token) -> str:
    api = HfApi(token=token)
    api.create_repo(repo_id, exist_ok=True)
    return api.upload_folder(folder_path=str(directory), repo_id=repo_id).oid


def test_pull_by_hub_id_catalog_name_and_revision(
    model_dir, hub_server, hub_token, new_repo_id, fresh_hf_cache, monkeypatch, tmp_path
):
    first = _push(model_dir / "tiny-bert", new_repo_id, hub_token)
    monkeypatch.setitem(CATALOG, "tiny-hub-bert", CatalogEntry(
        "tiny-hub-bert", new_repo_id, "apache-2.0", ("en",), "0.1M", "test entry", family="bert",
    ))  # fmt: skip
    local = AutoLoader("embedding", "tiny-bert", model_dir=model_dir)
    by_id = AutoLoader("embedding", new_repo_id)
    by_name = AutoLoader("EMBEDDING", "Tiny-Hub-Bert")  # names are case-insensitive
    assert str(by_id.directory).startswith(str(fresh_hf_cache)) and by_name.directory == by_id.directory
    batch = local.get_tokenizer()(["the cat sat", "john"], padding=True, return_tensors="pt")
    expected = local.get_model()(**batch).pooler_output
    torch.testing.assert_close(by_id.get_model()(**batch).pooler_output, expected, rtol=0, atol=0)

    # A new push; the pinned revision still loads the old weights.
    changed = tmp_path / "changed"
    model = local.get_model().model
    with torch.no_grad():
        model.embed_tokens.weight.mul_(2)
    save_dir = AutoLoader("masklm", "tiny-bert", model_dir=model_dir).get_model()
    with torch.no_grad():
        save_dir.model.embed_tokens.weight.mul_(2)
    save_dir.save_pretrained(changed)
    local.get_tokenizer().save_pretrained(changed)
    second = _push(changed, new_repo_id, hub_token)
    assert second != first
    latest = AutoLoader("embedding", new_repo_id).get_model()
    pinned = AutoLoader("embedding", new_repo_id, revision=first).get_model()
    torch.testing.assert_close(pinned(**batch).pooler_output, expected, rtol=0, atol=0)
    assert not torch.allclose(latest(**batch).pooler_output, expected)


def test_offline_uses_the_cache_and_says_how_when_it_cannot(
    model_dir, hub_token, new_repo_id, fresh_hf_cache, run_offline, monkeypatch
):
    _push(model_dir / "tiny-gpt2", new_repo_id, hub_token)
    AutoLoader("lm", new_repo_id)  # fills the cache
    code = (
        "from auto_loader import AutoLoader; "
        f"loader = AutoLoader('lm', {new_repo_id!r}); "
        "print(type(loader.get_model()).__name__, loader.directory)"
    )
    result = run_offline(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("GPT2ForCausalLM") and str(fresh_hf_cache) in result.stdout

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match="model_dir") as error:
        AutoLoader("lm", "smollm2-135m")
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in str(error.value) and "HF_HUB_OFFLINE" in str(error.value)


def test_unreachable_hub_is_reported(monkeypatch):
    monkeypatch.setattr(hub_constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(
        hub_constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        "http://127.0.0.1:9/{repo_id}/resolve/{revision}/{filename}",
    )
    with pytest.raises(ModelUnavailableError, match="unreachable"):
        AutoLoader("classification", "bert-base-en")


# ------------------------------------------------------------------------------------- bad input
def test_unknown_task_and_model_names_list_close_matches(model_dir):
    with pytest.raises(UnknownNameError, match="did you mean 'ner-crf'"):
        AutoLoader("ner_crf", "tiny-bert", model_dir=model_dir)
    with pytest.raises(UnknownNameError, match="did you mean 'glm-large-ch'") as error:
        AutoLoader("title-generation", "glm-larg-ch")
    assert "bert-base-en" in str(error.value)


def test_a_task_the_family_has_no_head_for(model_dir):
    with pytest.raises(UnsupportedHeadError, match="causal-lm") as error:
        AutoLoader("lm", "tiny-bert", model_dir=model_dir)
    assert "masked-lm" in str(error.value) and "sequence-classification" in str(error.value)
    with pytest.raises(UnsupportedHeadError, match="embedding"):
        AutoLoader("masklm", "all-MiniLM-L6-v2", model_dir=model_dir)  # narrowed by its catalog entry


def test_label_overrides_are_checked(model_dir):
    with pytest.raises(ConfigError, match="disagree"):
        AutoLoader("classification", "tiny-bert", model_dir=model_dir, class_num=3, num_labels=2)
    with pytest.raises(ConfigError, match="3 labels given"):
        AutoLoader("classification", "tiny-bert", model_dir=model_dir, labels=["a", "b", "c"], class_num=2)
    loader = AutoLoader("classification", "tiny-bert", model_dir=model_dir, labels=["neg", "pos"])
    records = [{"text": "i love it", "label": "pos"}, {"text": "meh", "label": "neutral"}]
    with pytest.raises(LabelError, match="neutral"):
        loader.task.preprocess(records, loader.get_tokenizer(), loader.get_model(), labels=["neg", "pos"])
    with pytest.raises(ConfigError, match="hidden_dropout"):
        AutoLoader("classification", "tiny-bert", model_dir=model_dir, hiden_dropout=0.1)


# ----------------------------------------------------------------------------------- the registry
def test_register_model_from_outside(model_dir, monkeypatch):
    monkeypatch.setattr(model_registry, "_FACTORIES", {})
    calls = []

    def factory(name, device, **model_kwargs):
        calls.append((name, device, model_kwargs))
        inner = AutoLoader(
            model_kwargs.pop("task", "classification"), "tiny-bert", model_dir=model_dir, **model_kwargs
        )
        return ModelBundle(name, inner.get_model(), inner.get_tokenizer(), device)

    register_model("my-classifier", factory)
    with pytest.raises(ValueError, match="already registered"):
        register_model("MY-CLASSIFIER", factory)
    bundle = make_model("my-classifier", device="cpu", task="classification", labels=["a", "b"])
    assert bundle.module.config.num_labels == 2 and bundle.device == torch.device("cpu")
    loader = AutoLoader("classification", "My-Classifier", labels=["x", "y", "z"])
    assert loader.get_model().config.num_labels == 3 and calls[-1][0] == "My-Classifier"
    assert loader.get_predictor().predict(["i love it"])[0]["label"] in {"x", "y", "z"}


def test_make_model_default_factory_loads_the_checkpoint_class(model_dir):
    bundle = make_model(str(model_dir / "tiny-t5"))
    assert type(bundle.module).__name__ == "T5ForConditionalGeneration" and bundle.tokenizer is not None
    bundle = make_model("tiny-llama", model_dir=model_dir, task="classification", labels=["a", "b"])
    assert type(bundle.module).__name__ == "LlamaForSequenceClassification"
    with pytest.raises(UnknownNameError, match="bert-base-en"):
        make_model("no-such-model")


@pytest.mark.parametrize("task_name", ["classification", "ner", "embedding"])
def test_token_types_of_a_bert_style_tokenizer_do_not_reach_families_without_them(task_name, model_dir):
    """T5 and GLM checkpoints often ship a BERT WordPiece tokenizer (uer/t5-base-chinese-*), whose
    token_type_ids their models do not take."""
    overrides = {"labels": LABELS[task_name]} if task_name in LABELS else {}
    for family in ("t5", "glm"):
        loader = AutoLoader(task_name, f"tiny-{family}", model_dir=model_dir, **overrides)
        model, tokenizer = loader.get_model(), loader.get_tokenizer()
        features = loader.task.preprocess(RECORDS[task_name], tokenizer, model, labels=LABELS.get(task_name))
        assert "token_type_ids" not in features.column_names and "input_ids" in features.column_names
        batch = loader.task.collator(tokenizer, model)(list(features))
        assert torch.isfinite(model(**batch).loss)
        assert len(loader.get_predictor().predict(PREDICT[task_name][:2])) == 2
