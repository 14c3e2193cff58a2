"""A complete family registered from outside the package, and what the package then derives for it.

Everything is declared here, as a family's folder would (``config.py``, ``model.py``, ``family.py``,
``heads.py``, ``__init__``): a Llama-architecture config under a new model_type with no transformers
counterpart, its base and causal-LM classes, a ``Family`` with a catalog entry, and the four head
classes written as ``zoo/models/llama/heads.py`` writes them. After ``register_family`` the registry,
``zoo.load``, the tasks, LoRA and the model cards know it without another line. Bad declarations fail
with ``FamilyDeclarationError`` naming the family and the field. The registry is global: the fixture
unregisters the family (``zoo.family.unregister_family``) so that no other test sees it.
"""

from __future__ import annotations

import peft
import pytest
import torch
from huggingface_hub.dataclasses import strict
from tiny_models import wordpiece_tokenizer

import tasks
import zoo
from auto_loader.cards import render_card
from tasks.base import model_inputs
from trainers.lora import apply_lora, default_target_modules
from zoo.family import (
    CatalogEntry,
    Family,
    FamilyDeclarationError,
    UnsupportedHeadError,
    catalog_entries,
    families,
    family_for,
    get_family,
    head_class,
    head_classes,
    register_family,
    supported_heads,
    unregister_family,
)
from zoo.heads import (
    SentenceEmbeddingHead,
    SequenceClassificationHead,
    TokenClassificationCRFHead,
    TokenClassificationHead,
)
from zoo.models.llama import LlamaForCausalLM, LlamaModel, LlamaPreTrainedModel

NAME = "outside"


# -- config.py ---------------------------------------------------------------------------------------
@strict
class OutsideConfig(zoo.LlamaConfig):
    model_type = "zoo_outside"
    reference_model_types = ()  # no transformers counterpart
    zoo_model_types = ("zoo_outside",)


# -- model.py ----------------------------------------------------------------------------------------
class OutsidePreTrainedModel(LlamaPreTrainedModel):
    config_class = OutsideConfig
    reference_architectures = {}


class OutsideModel(LlamaModel):
    config_class = OutsideConfig
    reference_architectures = {}


class OutsideForCausalLM(LlamaForCausalLM):
    config_class = OutsideConfig
    base_model_class = OutsideModel
    reference_architectures = {}


# -- family.py ---------------------------------------------------------------------------------------
ARCHITECTURE = "pre-RMSNorm decoder declared outside the zoo package (Llama blocks under a new model type)"
PARITY = "none measured: an outside test family (`tests/test_family_registration.py`)"
ENTRY = CatalogEntry(
    "outside-tiny", "acme/outside-tiny", "apache-2.0", ("en",), "0.1M", "A tiny family declared outside zoo."
)
TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=64,
    max_position_embeddings=64,
)
OUTSIDE = Family(
    name=NAME,
    kind="decoder",
    config_class=OutsideConfig,
    base_class=OutsideModel,
    lm_heads={"causal-lm": OutsideForCausalLM},
    architecture=ARCHITECTURE,
    parity=PARITY,
    catalog=(ENTRY,),
    tiny_config=TINY,
)


# -- heads.py ----------------------------------------------------------------------------------------
class OutsideForSequenceClassification(SequenceClassificationHead, OutsidePreTrainedModel):
    family = OUTSIDE


class OutsideForTokenClassification(TokenClassificationHead, OutsidePreTrainedModel):
    family = OUTSIDE


class OutsideForTokenClassificationCRF(TokenClassificationCRFHead, OutsidePreTrainedModel):
    family = OUTSIDE


class OutsideForSentenceEmbedding(SentenceEmbeddingHead, OutsidePreTrainedModel):
    family = OUTSIDE


HEADS = (
    OutsideForSequenceClassification,
    OutsideForTokenClassification,
    OutsideForTokenClassificationCRF,
    OutsideForSentenceEmbedding,
)
HEAD_OF_KIND = {cls.head_kind: cls for cls in HEADS}


# -- __init__.py, for the length of this module ------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def outside():
    assert NAME not in families()
    register_family(OUTSIDE, heads=HEADS)
    yield OUTSIDE
    unregister_family(NAME)
    assert NAME not in families() and OUTSIDE.catalog[0] not in catalog_entries()
    # unregister_family leaves the classes loadable (zoo.registry has no removal): drop them from the
    # name table too, so that tests enumerating zoo.registered_classes() do not meet them. (The
    # transformers Auto classes and PEFT keep their entries for the zoo_outside model type.)
    for cls in (OutsideModel, OutsideForCausalLM, *HEADS):
        zoo.registry._ZOO_CLASSES.pop(cls.__name__, None)
    zoo.registry._BASE_BY_MODEL_TYPE.pop(OutsideConfig.model_type, None)


@pytest.fixture(scope="module")
def tokenizer():
    return wordpiece_tokenizer()


def tiny_config(tokenizer=None, **overrides) -> OutsideConfig:
    vocab = len(tokenizer) if tokenizer is not None else 64
    return OutsideConfig(
        **TINY, vocab_size=vocab, pad_token_id=0, bos_token_id=2, eos_token_id=3, **overrides
    )


NER_RECORDS = [
    {"tokens": ["john", "lives", "in", "paris"], "tags": ["B-PER", "O", "O", "B-LOC"]},
    {"tokens": ["the", "cat", "sat"], "tags": ["O", "O", "O"]},
]


# -- the registry ------------------------------------------------------------------------------------
def test_registry_gives_the_heads():
    assert families()[NAME] is OUTSIDE and get_family(NAME) is OUTSIDE
    assert supported_heads(NAME) == (
        "causal-lm",
        "seq2seq",  # a decoder's seq2seq head is its causal LM (a prefix LM)
        "sequence-labeling",
        "sequence-labeling-crf",
        "sequence-classification",
        "embedding",
    )
    for kind, cls in HEAD_OF_KIND.items():
        assert head_class(NAME, kind) is cls
        assert head_classes()[cls.__name__] is cls
        # what HeadMixin derives from the declaration
        assert cls.config_class is OutsideConfig and cls.reference_architectures == {}
    assert head_class(NAME, "causal-lm") is head_class(NAME, "seq2seq") is OutsideForCausalLM
    assert family_for("zoo_outside") is OUTSIDE and family_for(tiny_config()) is OUTSIDE
    assert ENTRY.family == "" and OUTSIDE.catalog[0].family == NAME  # the declaration fills it in
    assert OUTSIDE.catalog[0] in catalog_entries()
    assert zoo.registered_classes()["OutsideForTokenClassification"] is OutsideForTokenClassification


@pytest.mark.parametrize(
    "cls", [OutsideForTokenClassification, OutsideForSequenceClassification, OutsideForCausalLM]
)
def test_zoo_load_returns_the_saved_class(cls, tmp_path):
    torch.manual_seed(0)
    model = cls(tiny_config(num_labels=3)).eval()
    model.save_pretrained(tmp_path)  # no transformers counterpart: the zoo layout
    loaded = zoo.load(tmp_path).eval()
    assert type(loaded) is cls
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, model(input_ids=ids).logits)


# -- what the package derives --------------------------------------------------------------------
def test_tasks_derive_from_the_declaration(tokenizer):
    rows = tasks.get_task("ner").preprocess(NER_RECORDS, tokenizer, NAME)
    assert "token_type_ids" not in rows.column_names  # token_types=False
    assert set(rows.column_names) == {"input_ids", "attention_mask", "labels"}
    labels = rows[0]["labels"]
    assert len(labels) == len(rows[0]["input_ids"]) and labels[0] == -100  # [CLS] has no tag

    # the rows train the registered head
    collator = tasks.get_task("ner").collator(tokenizer, NAME)
    batch = collator([rows[i] for i in range(len(rows))])
    torch.manual_seed(0)
    model = head_class(NAME, "sequence-labeling")(tiny_config(tokenizer, num_labels=3))
    assert torch.isfinite(model(**batch).loss)

    assert type(tasks.seq2seq_format(tokenizer, NAME)).__name__ == "PrefixLMFormat"
    assert OUTSIDE.seq2seq_format == "prefix-lm"
    encoding = tokenizer(["the cat sat"])
    assert "token_type_ids" in encoding and "token_type_ids" not in model_inputs(encoding, NAME)
    assert set(model_inputs(encoding, NAME)) == {"input_ids", "attention_mask"}


def test_lora_targets_derive_from_the_declaration():
    assert default_target_modules(NAME) == ["attn.qkv", "attn.out"]
    assert default_target_modules(NAME, mlp=True) == [
        "attn.qkv",
        "attn.out",
        "mlp.gate",
        "mlp.up",
        "mlp.down",
    ]
    torch.manual_seed(0)
    wrapped = apply_lora(OutsideForCausalLM(tiny_config()))
    assert _lora_suffixes(wrapped) == {"attn.qkv", "attn.out"}
    # PEFT's own defaults (registered from peft_default_targets): no target_modules
    plain = peft.get_peft_model(
        OutsideForCausalLM(tiny_config()), peft.LoraConfig(task_type="CAUSAL_LM", r=4)
    )
    assert _lora_suffixes(plain) == set(OUTSIDE.peft_default_targets[0]) == {"attn.qkv"}


def _lora_suffixes(model) -> set[str]:
    """``attn.qkv`` of ``base_model.model.model.layers.0.attn.qkv``, for every LoRA-wrapped layer."""
    return {
        ".".join(name.split(".")[-2:])
        for name, module in model.named_modules()
        if isinstance(module, peft.tuners.lora.LoraLayer)
    }


def test_the_card_renders(outside):
    entry = outside.catalog[0]
    text = str(render_card(entry))
    assert ARCHITECTURE in text and PARITY in text
    assert "pipeline_tag: text-generation" in text and "acme/outside-tiny" in text


def test_unregister_and_register_again():
    unregister_family(NAME)
    try:
        assert NAME not in families()
        with pytest.raises(zoo.UnknownNameError):
            get_family(NAME)
        with pytest.raises(zoo.UnknownNameError):
            family_for("zoo_outside")
        with pytest.raises(UnsupportedHeadError):
            head_class(NAME, "sequence-labeling")
        assert "OutsideForTokenClassification" not in head_classes()
        with pytest.raises(zoo.UnknownNameError):
            unregister_family(NAME)
    finally:
        register_family(OUTSIDE, heads=HEADS)  # the model type is free again: no clash with itself
    assert head_class(NAME, "embedding") is OutsideForSentenceEmbedding


# -- bad declarations ----------------------------------------------------------------------------
def test_a_missing_fact_names_the_family_and_the_field():
    with pytest.raises(FamilyDeclarationError, match=r"family 'x'.*'parity'"):
        Family(
            name="x",
            kind="decoder",
            config_class=OutsideConfig,
            base_class=OutsideModel,
            lm_heads={"causal-lm": OutsideForCausalLM},
            architecture=ARCHITECTURE,
        )
    with pytest.raises(FamilyDeclarationError, match=r"family 'x'.*'lm_heads'"):
        Family(
            name="x",
            kind="decoder",
            config_class=OutsideConfig,
            base_class=OutsideModel,
            architecture="a",
            parity="p",
        )
    with pytest.raises(FamilyDeclarationError, match=r"family 'x'.*kind='decodr'"):
        Family(
            name="x", kind="decodr", config_class=OutsideConfig, base_class=OutsideModel,
            lm_heads={"causal-lm": OutsideForCausalLM}, architecture="a", parity="p",
        )  # fmt: skip


@strict
class ClashConfig(OutsideConfig):
    model_type = "zoo_outside_clash"
    zoo_model_types = ("zoo_outside_clash",)


class ClashModel(OutsideModel):
    config_class = ClashConfig


class ClashForCausalLM(OutsideForCausalLM):
    config_class = ClashConfig
    base_model_class = ClashModel


def test_two_families_claiming_one_transformers_model_type():
    clash = Family(
        name="outside-clash",
        kind="decoder",
        config_class=ClashConfig,
        base_class=ClashModel,
        lm_heads={"causal-lm": ClashForCausalLM},
        transformers_model_types=("llama",),
        architecture=ARCHITECTURE,
        parity=PARITY,
    )
    with pytest.raises(FamilyDeclarationError, match=r"families 'llama' and 'outside-clash'.*'llama'"):
        register_family(clash)
    # nothing of the refused declaration was registered
    assert "outside-clash" not in families()
    assert family_for("llama").name == "llama"
    with pytest.raises(zoo.UnknownNameError):
        family_for("zoo_outside_clash")


def test_a_head_class_with_the_wrong_name_names_the_expected_one():
    with pytest.raises(
        FamilyDeclarationError,
        match=r"family 'outside'.*must be called OutsideForTokenClassification, not OutsideTagger",
    ):

        class OutsideTagger(TokenClassificationHead, OutsidePreTrainedModel):
            family = OUTSIDE


def test_an_lm_head_on_another_config_is_refused():
    other = Family(
        name="outside-mixed",
        kind="decoder",
        config_class=ClashConfig,
        base_class=ClashModel,
        lm_heads={"causal-lm": OutsideForCausalLM},  # built on OutsideConfig
        architecture=ARCHITECTURE,
        parity=PARITY,
    )
    with pytest.raises(
        FamilyDeclarationError, match=r"family 'outside-mixed'.*OutsideForCausalLM.*OutsideConfig"
    ):
        register_family(other)
    assert "outside-mixed" not in families()
