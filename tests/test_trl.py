"""TRL's SFTTrainer and DPOTrainer train zoo causal LMs with the numbers of transformers' own classes.

Each run trains the zoo class loaded from a directory transformers wrote (through the family's weight
map) and, with the same seed and data, transformers' class holding the same weights; the logged
losses agree to float rounding step by step, and they go down.

- SFT: Llama and GPT-2, a "text" dataset with and without ``packing=True`` (TRL's default "bfd"
  packing is padding-free: one row, no attention mask, ``position_ids`` restarting at every document;
  on CPU the SDPA mask built from them keeps documents apart, checked token by token), and a
  prompt/completion dataset (loss on the completion only).
- DPO with an explicit reference (Llama, GPT-2), after which TRL's ``disable_dropout`` must have
  made train-mode forwards deterministic, and with the default reference, which TRL rebuilds from
  ``model.config._name_or_path`` as ``getattr(transformers, config.architectures[0])``: for a
  directory transformers wrote and for one zoo's ``save_pretrained`` wrote, that reference holds the
  policy's weights. Step 0 is DPO's identical-reference point: loss ln 2, rewards 0, accuracy 0.

TRL's configs default to bf16 autocast, on CPU too; the runs here are float32, where the two classes
agree to rounding (in bf16, zoo's fused q/k/v projection rounds differently: ~7e-5 apart after a step).
Gradient checkpointing stays on, as TRL sets it.
"""

from __future__ import annotations

import math

import datasets
import pytest
import torch
import transformers
from tiny_models import bpe_tokenizer

import zoo

trl = pytest.importorskip("trl", reason='pip install -c constraints.txt -e ".[dev]"')

TEXTS = [
    "the cat sat on the mat .",
    "john lives in paris and works at acme .",
    "i love this movie , it was good !",
    "the dog ran in the park .",
    "this film was bad .",
    "a cat and a dog sat on a mat .",
]
PROMPTS = {
    "prompt": ["the cat", "john lives in", "i love this", "the dog ran", "this film", "a dog"],
    "completion": [" sat on the mat .", " paris .", " movie !", " in the park .", " was bad .", " ran ."],
}
PREFERENCES = {
    "prompt": ["the cat", "john lives in", "i love this", "the dog ran"],
    "chosen": [" sat on the mat .", " paris .", " movie !", " in the park ."],
    "rejected": [" is bad .", " the mat .", " film , it was bad .", " at acme ."],
}
ZOO_CLASS = {"llama": zoo.LlamaForCausalLM, "gpt2": zoo.GPT2ForCausalLM}
REFERENCE_CLASS = {"llama": transformers.LlamaForCausalLM, "gpt2": transformers.GPT2LMHeadModel}


def _save_reference(family: str, directory) -> None:
    """A tiny randomly initialised transformers model of ``family``, saved as transformers saves it."""
    tokenizer = bpe_tokenizer()
    torch.manual_seed(0)
    special = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    if family == "llama":
        config = transformers.LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, **special,
        )  # fmt: skip
    else:
        config = transformers.GPT2Config(
            vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=64, **special
        )
    REFERENCE_CLASS[family](config).save_pretrained(directory)


def _load_reference(family: str, directory) -> transformers.PreTrainedModel:
    model = REFERENCE_CLASS[family].from_pretrained(directory)
    # transformers derives a model's loss from its class name, and "GPT2LMHeadModel" names none
    # (loss_type None), so Trainer counts position 0 of every row as a target and divides the causal
    # loss by tokens + rows; zoo's GPT2ForCausalLM counts the shifted targets, as Llama does.
    model.loss_type = "ForCausalLM"
    return model


def _train(trainer_class, model, directory, dataset, *, ref_model=None, **options):
    config_class = trl.DPOConfig if trainer_class is trl.DPOTrainer else trl.SFTConfig
    args = config_class(
        output_dir=str(directory), max_steps=4, per_device_train_batch_size=2, learning_rate=1e-2,
        logging_steps=1, report_to=[], use_cpu=True, dataloader_pin_memory=False, seed=0,
        save_strategy="no", disable_tqdm=True, bf16=False, **options,
    )  # fmt: skip
    references = {"ref_model": ref_model} if trainer_class is trl.DPOTrainer else {}
    trainer = trainer_class(
        model=model, args=args, train_dataset=dataset, processing_class=bpe_tokenizer(), **references
    )
    trainer.train()
    return trainer


def _logged(trainer, key: str = "loss") -> list[float]:
    return [entry[key] for entry in trainer.state.log_history if "loss" in entry]


def _assert_documents_kept_apart(model, batch) -> None:
    """Logits of a padding-free packed row == those of each document run alone."""
    positions = batch["position_ids"][0]
    starts = [*(positions == 0).nonzero().flatten().tolist(), len(positions)]
    assert len(starts) > 2  # several documents in the row
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        for start, end in zip(starts, starts[1:]):
            alone = model(input_ids=batch["input_ids"][:, start:end]).logits[0]
            torch.testing.assert_close(packed[start:end], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("family", "data", "packing"),
    [
        ("llama", "text", False),
        ("llama", "text", True),
        ("gpt2", "text", False),
        ("gpt2", "text", True),
        ("llama", "prompt-completion", False),
    ],
)
def test_sft_losses_match_transformers(family, data, packing, tmp_path):
    _save_reference(family, tmp_path / "model")
    dataset = datasets.Dataset.from_dict({"text": TEXTS} if data == "text" else PROMPTS)
    losses = {}
    for who, model in (
        ("zoo", ZOO_CLASS[family].from_pretrained(tmp_path / "model")),
        ("transformers", _load_reference(family, tmp_path / "model")),
    ):
        trainer = _train(trl.SFTTrainer, model, tmp_path / who, dataset, packing=packing, max_length=24)
        losses[who] = _logged(trainer)
        if who == "zoo":
            assert trainer.completion_only_loss == (data == "prompt-completion")
            if packing:
                batch = next(iter(trainer.get_train_dataloader()))
                assert "attention_mask" not in batch
                _assert_documents_kept_apart(model.eval(), batch)
    ours, theirs = losses["zoo"], losses["transformers"]
    assert len(ours) == 4
    assert ours == pytest.approx(theirs, rel=1e-5)
    assert ours[-1] < ours[0] - 0.2


def _assert_identical_reference_at_step_0(trainer) -> None:
    first = trainer.state.log_history[0]
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert first["rewards/chosen"] == first["rewards/rejected"] == first["rewards/margins"] == 0.0
    assert first["rewards/accuracies"] == 0.0  # chosen > rejected is false for equal rewards


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_dpo_with_an_explicit_reference_matches_transformers(family, tmp_path):
    _save_reference(family, tmp_path / "model")
    dataset = datasets.Dataset.from_dict(PREFERENCES)
    trainers = {}
    for who, classes in (("zoo", ZOO_CLASS), ("transformers", REFERENCE_CLASS)):
        model, reference = (classes[family].from_pretrained(tmp_path / "model") for _ in range(2))
        trainers[who] = _train(trl.DPOTrainer, model, tmp_path / who, dataset, ref_model=reference)
    ours, theirs = trainers["zoo"], trainers["transformers"]
    assert isinstance(ours.ref_model, ZOO_CLASS[family]) and ours.ref_model is not ours.model
    # DPO's disable_dropout (on by default) zeroes every nn.Dropout: train-mode forwards then repeat.
    input_ids = bpe_tokenizer()(TEXTS[:1], return_tensors="pt").input_ids
    with torch.no_grad():
        first, second = (ours.model.train()(input_ids=input_ids).logits for _ in range(2))
    difference = (first - second).abs().max().item()
    assert difference == 0, (
        f"dropout survives TRL's disable_dropout: train-mode logits differ by {difference:.3g}"
    )
    _assert_identical_reference_at_step_0(ours)
    assert _logged(ours) == pytest.approx(_logged(theirs), rel=1e-5)
    assert _logged(ours, "rewards/margins") == pytest.approx(_logged(theirs, "rewards/margins"), abs=1e-5)
    assert _logged(ours)[-1] < math.log(2) - 0.1


@pytest.mark.parametrize("saved_by", ["transformers", "zoo", "zoo-layout"])
def test_dpo_default_reference_holds_the_policy_s_weights(saved_by, tmp_path):
    """With ``ref_model=None`` TRL loads the reference from the policy's directory as the transformers
    class its ``config.json`` names: that directory must hold the policy's weights in that class's layout,
    whether transformers wrote it or zoo's ``save_pretrained`` did."""
    _save_reference("llama", tmp_path / "transformers-saved")
    directory = tmp_path / "transformers-saved"
    if saved_by != "transformers":  # zoo's default (the transformers layout), or its own layout on request
        layout = "zoo" if saved_by == "zoo-layout" else None
        zoo.LlamaForCausalLM.from_pretrained(directory).save_pretrained(tmp_path / "zoo-saved", layout=layout)
        directory = tmp_path / "zoo-saved"
    policy = zoo.LlamaForCausalLM.from_pretrained(directory)
    input_ids = bpe_tokenizer()(TEXTS[:1], return_tensors="pt").input_ids
    with torch.no_grad():
        expected = policy(input_ids=input_ids).logits

    dataset = datasets.Dataset.from_dict(PREFERENCES)
    ours = _train(trl.DPOTrainer, policy, tmp_path / "zoo", dataset)
    # ZooLlamaForCausalLM is no transformers class: TRL falls back to the Auto class zoo registered
    reference_class = zoo.LlamaForCausalLM if saved_by == "zoo-layout" else transformers.LlamaForCausalLM
    assert type(ours.ref_model) is reference_class
    with torch.no_grad():
        torch.testing.assert_close(ours.ref_model(input_ids=input_ids).logits, expected, atol=1e-5, rtol=0)
    _assert_identical_reference_at_step_0(ours)
    reference_policy = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "transformers-saved")
    theirs = _train(trl.DPOTrainer, reference_policy, tmp_path / "transformers", dataset)
    assert _logged(ours) == pytest.approx(_logged(theirs), rel=1e-5)
    assert _logged(ours)[-1] < math.log(2) - 0.1
