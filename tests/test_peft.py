"""LoRA on every family (trainers.lora): trainable parameters, identity at init, which weights a step
moves, adapter save / load / merge, AutoLoader(adapter=...) from a directory and from the Hub, and
Trainer with activation checkpointing."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi
from peft import PeftModel, TaskType
from safetensors import safe_open
from tiny_models import save_tiny_checkpoint, tiny_pretrained_model, tokenizer_for
from transformers import TrainingArguments

import zoo
from auto_loader import AutoLoader
from tasks import get_task
from tasks.heads import head_class
from trainers.lora import (
    AdapterMismatchError,
    AdapterNotFoundError,
    LoraSetupError,
    apply_lora,
    default_target_modules,
    lora_config,
    task_type_for,
)
from zoo.errors import UnknownNameError

R = 4
LABELS = ["neg", "pos", "mixed"]
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
# head kind -> (task whose preprocessing and collator make the batch, its records)
BATCHES = {
    "causal-lm": ("lm", [{"text": "the cat sat on the mat"}, {"text": "john lives in paris"}]),
    "masked-lm": ("masklm", [{"text": "the cat sat on the mat"}, {"text": "john lives in paris"}]),
    "seq2seq": ("seq2seq", [{"source": "the cat sat on the mat", "target": "cat mat"},
                            {"source": "john lives in paris", "target": "john paris"}]),
    "sequence-classification": ("classification", [{"text": "i love this film", "label": "pos"},
                                                   {"text": "bad movie", "label": "neg"}]),
    "sequence-labeling-crf": ("ner-crf", [{"tokens": ["john", "lives", "in", "paris"],
                                           "tags": ["B-PER", "O", "O", "B-LOC"]}]),
    "embedding": ("embedding", [{"text": "the cat sat", "text_pair": "a cat sat", "score": 0.9},
                                {"text": "the cat sat", "text_pair": "john works at acme", "score": 0.1}]),
}  # fmt: skip
NATURAL = {"bert": "masked-lm", "roberta": "masked-lm", "gpt2": "causal-lm", "llama": "causal-lm",
           "gpt": "causal-lm", "t5": "seq2seq", "glm": "seq2seq"}  # fmt: skip
CASES = [
    *NATURAL.items(),
    *((family, "sequence-classification") for family in NATURAL),
    ("bert", "seq2seq"),  # UniLM
    ("llama", "sequence-labeling-crf"),
    ("t5", "embedding"),
]
EXPECTED_TASK_TYPE = {"causal-lm": "CAUSAL_LM", "masked-lm": None, "sequence-classification": "SEQ_CLS",
                      "sequence-labeling-crf": "TOKEN_CLS", "embedding": "FEATURE_EXTRACTION"}  # fmt: skip
# Written out here, independently of trainers.lora: the linear layers LoRA must wrap by default.
ATTENTION_LAYERS = {"attn.qkv", "attn.out", "cross_attn.q", "cross_attn.kv", "cross_attn.out"}


def build(family: str, kind: str):
    """(tokenizer, model with the pre-trained tiny backbone, batch with labels) for one head."""
    tokenizer = tokenizer_for(family)
    model = tiny_pretrained_model(family, tokenizer)  # seeds 0 itself
    if kind != NATURAL[family]:
        config = copy.deepcopy(model.config)
        labels = TAGS if kind.startswith("sequence-labeling") else LABELS
        config.id2label, config.label2id = dict(enumerate(labels)), {x: i for i, x in enumerate(labels)}
        torch.manual_seed(1)
        head = head_class(family, kind)(config)
        head.load_state_dict(model.state_dict(), strict=False)  # the backbone's pre-trained weights
        model = head
    task, records = BATCHES[kind]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
        model.config.pad_token_id = tokenizer.pad_token_id
    task = get_task(task)
    labels = LABELS if kind == "sequence-classification" else TAGS if kind.startswith("sequence-") else None
    dataset = task.preprocess(records, tokenizer, model, max_length=32, labels=labels)
    batch = task.collator(tokenizer, model)([dataset[i] for i in range(len(dataset))])
    family_record = getattr(type(model), "family", None)
    if family_record is not None and not family_record.token_types:
        # the tasks keep the token_type_ids a WordPiece tokenizer makes, and T5 / GLM / Llama reject them
        for key in ("token_type_ids", "pair_token_type_ids"):
            batch.pop(key, None)
    if kind == "masked-lm":  # the collator masks 15% at random; a short batch may get no target at all
        batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    return tokenizer, model.eval(), batch


def output_of(model, batch) -> torch.Tensor:
    out = model(**batch)
    return out.logits if getattr(out, "logits", None) is not None else out.pooler_output


def expected_trainable(model, kind: str, family: str) -> tuple[int, int]:
    """(LoRA parameters, head parameters) computed from the plain model, before wrapping."""
    lora = sum(
        R * (module.in_features + module.out_features)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and ".".join(name.split(".")[-2:]) in ATTENTION_LAYERS
    )
    head_prefixes = {
        "sequence-classification": ("classifier.", "score.")
        + (("model.pooler.",) if family in ("bert", "roberta") else ()),
        "sequence-labeling-crf": ("classifier.", "score.", "crf."),
    }.get(kind, ())
    head = sum(p.numel() for n, p in model.named_parameters() if n.startswith(head_prefixes))
    return lora, head


def train_steps(model, batch, steps: int = 3, lr: float = 1e-2) -> None:
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    model.eval()


@pytest.mark.parametrize("family, kind", CASES, ids=[f"{f}-{k}" for f, k in CASES])
def test_lora_trains_only_adapters_and_head_and_starts_as_identity(family, kind):
    _, model, batch = build(family, kind)
    with torch.no_grad():
        reference = output_of(model, batch)
    lora_count, head_count = expected_trainable(model, kind, family)

    peft_model = apply_lora(model, r=R)
    want = EXPECTED_TASK_TYPE.get(kind, "SEQ_2_SEQ_LM" if family == "t5" else "CAUSAL_LM")
    assert peft_model.peft_config["default"].task_type == want
    trainable = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
    assert sum(p.numel() for n, p in trainable.items() if "lora_" in n) == lora_count > 0
    assert sum(p.numel() for n, p in trainable.items() if "modules_to_save" in n) == head_count
    assert sum(p.numel() for p in trainable.values()) == lora_count + head_count
    with torch.no_grad():
        assert (output_of(peft_model, batch) - reference).abs().max().item() <= 1e-6  # B = 0

    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}
    optimizer = torch.optim.Adam(trainable.values(), lr=1e-2)
    peft_model.train()
    peft_model(**batch).loss.backward()
    # B = 0, so no gradient reaches A in the first step: only B and the head move
    assert all(p.grad is None or not p.grad.any() for n, p in trainable.items() if "lora_A" in n)
    optimizer.step()
    changed = {n for n, p in peft_model.named_parameters() if not torch.equal(p, before[n])}
    lora_b = {n for n in trainable if "lora_B" in n}
    head = {n for n in trainable if "modules_to_save" in n}
    assert len(lora_b) == len([n for n in trainable if "lora_A" in n]) > 0
    assert changed == lora_b | head  # the backbone and the heads' original copies are bit-identical


def test_default_targets_per_family_and_model():
    assert default_target_modules("llama") == ["attn.qkv", "attn.out"]
    assert default_target_modules("llama", mlp=True) == [
        "attn.qkv",
        "attn.out",
        "mlp.gate",
        "mlp.up",
        "mlp.down",
    ]
    assert default_target_modules("t5") == [
        "attn.qkv",
        "attn.out",
        "cross_attn.q",
        "cross_attn.kv",
        "cross_attn.out",
    ]
    _, t5, _ = build("t5", "seq2seq")  # T5 v1.0: plain MLP, so no gate
    assert default_target_modules(t5, mlp=True) == [*default_target_modules("t5"), "mlp.up", "mlp.down"]
    _, t5_classifier, _ = build("t5", "sequence-classification")  # encoder only: no cross-attention
    assert default_target_modules(t5_classifier) == ["attn.qkv", "attn.out"]
    _, gpt, _ = build("gpt", "causal-lm")
    config = lora_config(gpt, r=2, mlp=True)
    assert set(config.target_modules) == {"attn.qkv", "attn.out", "mlp.up", "mlp.down"} and config.r == 2
    assert task_type_for(gpt) == TaskType.CAUSAL_LM


def test_unknown_family_task_type_and_double_wrap_are_typed_errors():
    with pytest.raises(UnknownNameError, match=r"'mamba'.*" + ", ".join(sorted(zoo.families()))):
        default_target_modules("mamba")
    plain = torch.nn.Sequential(torch.nn.Linear(4, 4))
    with pytest.raises(UnknownNameError, match="Sequential.*target_modules"):
        lora_config(plain)
    assert lora_config(plain, target_modules=["0"]).target_modules == {"0"}  # explicit targets: any model
    _, model, _ = build("gpt2", "causal-lm")
    with pytest.raises(LoraSetupError, match=r"'CLASSIFY'.*SEQ_CLS"):
        lora_config(model, task_type="CLASSIFY")
    with pytest.raises(LoraSetupError, match="already a PeftModel"):
        apply_lora(apply_lora(model))


# ---------------------------------------------------------------------------------- save, load, merge
@pytest.mark.parametrize("family, kind", [("llama", "causal-lm"), ("bert", "sequence-classification"),
                                          ("t5", "seq2seq")])  # fmt: skip
@pytest.mark.filterwarnings(
    "ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"
)  # PEFT 0.21 asks
def test_adapter_saves_alone_and_reloads_exactly(family, kind, tmp_path):
    _, model, batch = build(family, kind)
    base_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    peft_model = apply_lora(model, r=R)
    train_steps(peft_model, batch)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    peft_model.save_pretrained(tmp_path / "adapter")

    files = sorted(p.name for p in (tmp_path / "adapter").iterdir())
    assert files == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    with safe_open(tmp_path / "adapter" / "adapter_model.safetensors", "pt") as weights:
        names = weights.keys()  # safe_open is not iterable itself
        saved = {name: weights.get_slice(name).get_shape() for name in names}
    head = ("base_model.model.classifier.", "base_model.model.model.pooler.")
    assert all("lora_" in name or name.startswith(head) for name in saved)
    assert sum(torch.Size(shape).numel() for shape in saved.values()) == trainable
    size = (tmp_path / "adapter" / "adapter_model.safetensors").stat().st_size
    assert 4 * trainable < size < 4 * trainable + 16_384 < base_bytes  # float32 adapter + header only

    _, fresh, _ = build(family, kind)
    loaded = PeftModel.from_pretrained(fresh, tmp_path / "adapter")
    with torch.no_grad():
        assert torch.equal(output_of(loaded, batch), output_of(peft_model, batch))


@pytest.mark.parametrize("family, kind", [("gpt2", "causal-lm"), ("t5", "seq2seq"), ("glm", "seq2seq"),
                                          ("llama", "sequence-classification")])  # fmt: skip
def test_merge_and_unload_gives_a_plain_model_with_ties_kept(family, kind):
    _, model, batch = build(family, kind)
    plain_class, plain_count = type(model), sum(p.numel() for p in model.parameters())
    peft_model = apply_lora(model, r=R, mlp=True)
    train_steps(peft_model, batch)
    with torch.no_grad():
        lora_output = output_of(peft_model, batch)
    merged = peft_model.merge_and_unload()
    assert type(merged) is plain_class and not any("lora_" in n for n, _ in merged.named_parameters())
    assert sum(p.numel() for p in merged.parameters()) == plain_count
    with torch.no_grad():
        assert (output_of(merged, batch) - lora_output).abs().max().item() <= 1e-5
    if kind != "sequence-classification":  # tied LM heads stay one tensor
        assert merged.get_output_embeddings().weight is merged.get_input_embeddings().weight


# ---------------------------------------------------------------------------------- AutoLoader(adapter=)
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("peft-models")
    for family in ("llama", "bert"):
        save_tiny_checkpoint(family, directory / f"tiny-{family}")
    return directory


def _trained_adapter(loader: AutoLoader, task: str, records, directory: Path, seed: int, labels=None):
    model, tokenizer = loader.get_model(), loader.get_tokenizer()
    torch.manual_seed(seed)
    peft_model = apply_lora(model, r=R)
    task = get_task(task)
    dataset = task.preprocess(records, tokenizer, model, max_length=32, labels=labels)
    batch = task.collator(tokenizer, model)([dataset[i] for i in range(len(dataset))])
    train_steps(peft_model, batch, steps=5)
    peft_model.save_pretrained(directory)
    return peft_model, batch


def test_auto_loader_loads_base_plus_adapter_from_a_directory(model_dir, tmp_path):
    lm_records = BATCHES["causal-lm"][1]
    trained, batch = _trained_adapter(AutoLoader("lm", "tiny-llama", model_dir=model_dir), "lm", lm_records,
                                      tmp_path / "lm-adapter", seed=0)  # fmt: skip
    loader = AutoLoader("lm", "tiny-llama", model_dir=model_dir, adapter=tmp_path / "lm-adapter")
    assert isinstance(loader.get_model(), PeftModel)
    with torch.no_grad():
        assert torch.equal(loader.get_model()(**batch).logits, trained(**batch).logits)

    # A classifier: the head (and BERT's pooler, absent from the masked-LM checkpoint) are random on
    # every load, so equal logits show they come from the adapter's modules_to_save.
    cls_records = BATCHES["sequence-classification"][1]

    def make(**kwargs) -> AutoLoader:
        return AutoLoader("classification", "tiny-bert", model_dir=model_dir, labels=LABELS, **kwargs)

    trained, batch = _trained_adapter(
        make(), "classification", cls_records, tmp_path / "cls-adapter", 0, LABELS
    )
    loader = make(adapter=str(tmp_path / "cls-adapter"))
    with torch.no_grad():
        assert torch.equal(loader.get_model()(**batch).logits, trained(**batch).logits)
        assert not torch.equal(make().get_model()(**batch).logits, trained(**batch).logits)
    predictions = loader.get_predictor().predict(["i love this film", "bad movie"])
    assert [p["label"] for p in predictions] == [
        LABELS[i] for i in trained(**batch).logits.argmax(-1).tolist()
    ]


def test_auto_loader_loads_an_adapter_by_hub_id_and_revision(
    model_dir, hub_token, new_repo_id, fresh_hf_cache, tmp_path
):
    records = BATCHES["causal-lm"][1]
    api = HfApi(token=hub_token)
    api.create_repo(new_repo_id)
    first, batch = _trained_adapter(AutoLoader("lm", "tiny-llama", model_dir=model_dir), "lm", records,
                                    tmp_path / "first", seed=0)  # fmt: skip
    first_commit = api.upload_folder(folder_path=str(tmp_path / "first"), repo_id=new_repo_id).oid
    second, _ = _trained_adapter(AutoLoader("lm", "tiny-llama", model_dir=model_dir), "lm", records * 2,
                                 tmp_path / "second", seed=1)  # fmt: skip
    api.upload_folder(folder_path=str(tmp_path / "second"), repo_id=new_repo_id)

    latest = AutoLoader("lm", "tiny-llama", model_dir=model_dir, adapter=new_repo_id, token=hub_token)
    pinned = AutoLoader("lm", "tiny-llama", model_dir=model_dir, adapter=new_repo_id,
                        adapter_revision=first_commit, token=hub_token)  # fmt: skip
    with torch.no_grad():
        assert torch.equal(latest.get_model()(**batch).logits, second(**batch).logits)
        assert torch.equal(pinned.get_model()(**batch).logits, first(**batch).logits)
        assert not torch.equal(first(**batch).logits, second(**batch).logits)
    assert list(fresh_hf_cache.iterdir())  # downloaded into the Hugging Face cache


def test_bad_adapters_are_typed_errors_naming_them(model_dir, tmp_path, hub_token):
    missing = tmp_path / "no-such-adapter"
    with pytest.raises(AdapterNotFoundError, match="no-such-adapter"):
        AutoLoader("lm", "tiny-llama", model_dir=model_dir, adapter=missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdapterNotFoundError, match=r"empty holds no adapter_config\.json"):
        AutoLoader("lm", "tiny-llama", model_dir=model_dir, adapter=tmp_path / "empty")
    with pytest.raises(AdapterNotFoundError, match="'nobody/no-such-adapter'.*RepositoryNotFoundError"):
        AutoLoader("lm", "tiny-llama", model_dir=model_dir, adapter="nobody/no-such-adapter", token=hub_token)

    # a classifier adapter for 3 labels onto a 2-label head
    def make(labels, **kwargs) -> AutoLoader:
        return AutoLoader("classification", "tiny-bert", model_dir=model_dir, labels=labels, **kwargs)

    _trained_adapter(make(LABELS), "classification", BATCHES["sequence-classification"][1],
                     tmp_path / "three", 0, LABELS)  # fmt: skip
    with pytest.raises(
        AdapterMismatchError, match=r"three.*BertForSequenceClassification.*\[3, 32\].*\[2, 32\]"
    ):
        make(["neg", "pos"], adapter=tmp_path / "three")


# ---------------------------------------------------------------------------------- activation checkpointing
def _attention_calls(model) -> list[int]:
    calls = [0]
    model.get_base_model().model.layers[0].attn.register_forward_hook(
        lambda *_: calls.__setitem__(0, calls[0] + 1)
    )
    return calls


def test_checkpointed_lora_gradients_equal_plain_lora_gradients():
    _, model, batch = build("llama", "causal-lm")
    torch.manual_seed(0)
    plain = apply_lora(model, r=R, mlp=True, init_lora_weights=False)  # B != 0: A gets gradients too
    checkpointed = copy.deepcopy(plain)
    checkpointed.get_base_model().activation_checkpointing_enable()
    assert checkpointed.get_base_model().is_activation_checkpointing
    assert not plain.get_base_model().is_activation_checkpointing
    calls = _attention_calls(checkpointed)
    grads = []
    for peft_model in (plain, checkpointed):
        peft_model.train()
        peft_model(**batch).loss.backward()
        grads.append({n: p.grad for n, p in peft_model.named_parameters() if p.requires_grad})
    assert calls[0] == 2  # forward, then recomputed in backward
    assert grads[0].keys() == grads[1].keys() and any("lora_A" in n for n in grads[0])
    for name, grad in grads[0].items():
        assert grad.abs().max() > 0 and (grad - grads[1][name]).abs().max().item() <= 1e-6, name


def test_trainer_with_lora_and_activation_checkpointing_lowers_the_loss(tmp_path):
    from trainers import build_trainer

    tokenizer, model, _ = build("llama", "causal-lm")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peft_model = apply_lora(model, r=8, mlp=True)
        calls = _attention_calls(peft_model)
        args = TrainingArguments(
            output_dir=str(tmp_path), activation_checkpointing=True, max_steps=10, learning_rate=2e-2,
            per_device_train_batch_size=4, logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
        )  # fmt: skip
        trainer = build_trainer("lm", peft_model, tokenizer, args, train_records=BATCHES["causal-lm"][1] * 2)
        trainer.train()
    assert not [w for w in caught if "checkpointing" in str(w.message)], [str(w.message) for w in caught]
    blocks = peft_model.get_base_model().model.layers
    assert peft_model.get_base_model().is_activation_checkpointing and all(
        b.gradient_checkpointing for b in blocks
    )
    assert calls[0] == 2 * 10  # every step recomputes the block in backward
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    # 5.64 -> 5.14 here: the frozen random lm_head and final norm of the tiny model bound how far LoRA gets
    assert len(losses) == 10 and all(b < a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < losses[0] - 0.4


def test_prefix_tuning_trains_as_on_transformers_and_its_generate_is_refused(tmp_path):
    """PEFT's prefix tuning hands its prefix to forward as ``past_key_values``: the loss and logits equal
    transformers' Llama under the same prefix. Its ``generate`` (PEFT 0.21.2 on transformers 5.24) passes
    the prefix as ``past_key_values`` and generate's own empty cache as ``cache``: transformers' class
    keeps ``cache`` and silently decodes without the prefix; zoo names the conflict instead."""
    import warnings

    from peft import PrefixTuningConfig, get_peft_model
    from test_drift_guard import CASES

    case = CASES["LlamaForCausalLM"](tmp_path)
    config = lambda: PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4)  # noqa: E731
    torch.manual_seed(0)
    theirs = get_peft_model(case.reference, config())
    ours = get_peft_model(case.model, config())
    ours.prompt_encoder.load_state_dict(theirs.prompt_encoder.state_dict())
    batch = {
        "input_ids": torch.tensor([[11, 23, 35, 47]]),
        "attention_mask": torch.ones(1, 4, dtype=torch.long),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the old cache name, from PEFT
        actual = ours(**batch, labels=batch["input_ids"])
        expected = theirs(**batch, labels=batch["input_ids"])
        assert (actual.logits - expected.logits).abs().max().item() <= 1e-5
        assert actual.loss.item() == pytest.approx(expected.loss.item(), abs=1e-6)
        with pytest.raises(TypeError, match="got both `cache` and `past_key_values`"):
            ours.generate(**batch, max_new_tokens=3)
