"""A checkpoint loads as the class it was saved as, or the error says what was found and expected.

``zoo.load`` of a plain transformers GPT-2 directory is ``GPT2ForCausalLM`` (nanoGPT's ``GPT`` only
exports to that layout); a saved task head, loaded where the heads are not registered, is an error
naming its architecture and the import that registers it, never the bare backbone with the head's
weights dropped; an architecture no class has is an error; ``AutoLoader`` refuses to lend one task's
head to another (an NER token classifier as a sentence classifier).
"""

from __future__ import annotations

import pytest
import torch
import transformers

import zoo
from auto_loader import AutoLoader
from tasks import heads
from tasks.heads import UnsupportedHeadError
from zoo.errors import ConfigError, UnknownNameError

TINY = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)


def test_a_transformers_gpt2_directory_loads_as_gpt2_not_nanogpt(tmp_path):
    config = transformers.GPT2Config(vocab_size=97, n_embd=32, n_layer=2, n_head=4)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path)
    assert type(zoo.load(tmp_path)) is zoo.GPT2ForCausalLM


def _classifier(tmp_path, layout: str):
    torch.manual_seed(0)
    config = zoo.BertConfig(**TINY, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1})
    model = heads.head_class("bert", "sequence-classification")(config).eval()
    model.save_pretrained(tmp_path, layout=layout)
    return model


@pytest.mark.parametrize("layout", ["transformers", "zoo"])
def test_a_saved_head_loads_as_the_head_with_zoo_alone(layout, tmp_path, run_offline):
    """Head classes are registered by their family folders: ``import zoo`` is all ``zoo.load`` needs."""
    model = _classifier(tmp_path, layout)
    again = zoo.load(tmp_path)
    assert type(again) is type(model)
    assert torch.equal(again.classifier.weight, model.classifier.weight)
    code = (
        "import sys, torch, zoo\n"
        f"model = zoo.load({str(tmp_path)!r})\n"
        "assert 'tasks' not in sys.modules, 'zoo.load imported tasks'\n"
        "print(type(model).__name__, float(model.classifier.weight.sum()))\n"
    )
    result = run_offline(code)
    assert result.returncode == 0, result.stderr[-2000:]
    name, total = result.stdout.split()
    assert name == "BertForSequenceClassification"
    assert abs(float(total) - float(model.classifier.weight.sum())) < 1e-5


def test_an_architecture_no_class_has_is_an_error(tmp_path):
    zoo.BertModel(zoo.BertConfig(**TINY)).save_pretrained(tmp_path, layout="zoo")
    text = (tmp_path / "config.json").read_text().replace('"ZooBertModel"', '"ZooBertForSomethingElse"')
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(UnknownNameError, match="ZooBertForSomethingElse.*valid: .*ZooBertModel"):
        zoo.load(tmp_path)


def test_autoloader_does_not_lend_one_task_s_head_to_another(tmp_path):
    from tiny_models import wordpiece_tokenizer

    torch.manual_seed(0)
    tags = {0: "O", 1: "B-PER", 2: "I-PER"}
    config = zoo.BertConfig(**TINY, id2label=tags, label2id={v: k for k, v in tags.items()})
    heads.head_class("bert", "sequence-labeling")(config).save_pretrained(tmp_path)
    wordpiece_tokenizer().save_pretrained(tmp_path)
    assert type(AutoLoader("ner", str(tmp_path)).get_model()).__name__ == "BertForTokenClassification"
    with pytest.raises(
        UnsupportedHeadError, match="saved with a sequence-labeling head.*needs a sequence-classification"
    ):
        AutoLoader("classification", str(tmp_path))
    with pytest.raises(ConfigError, match="needs the new head's labels"):
        AutoLoader("classification", str(tmp_path), reheading=True)

    # re-heading on request: the backbone loads, the saved token classifier is left unread
    ner = AutoLoader("ner", str(tmp_path)).get_model()
    reheaded = AutoLoader("classification", str(tmp_path), reheading=True, labels=["neg", "pos"]).get_model()
    assert type(reheaded).__name__ == "BertForSequenceClassification"
    assert reheaded.config.id2label == {0: "neg", 1: "pos"} and reheaded.classifier.out_features == 2
    for name, tensor in ner.model.state_dict().items():
        assert torch.equal(reheaded.model.state_dict()[name], tensor), name
