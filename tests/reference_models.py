"""Tiny transformers reference models with random weights, and their zoo twins loaded from disk.

The zoo twin is always loaded through the production path (``from_pretrained`` on the directory
transformers wrote, i.e. through the family's weight map), never by copying tensors by hand.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers

import zoo

VOCAB = 211


def tiny_reference(kind: str, **overrides) -> transformers.PreTrainedModel:
    torch.manual_seed(0)
    if kind == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=VOCAB, n_embd=64, n_layer=3, n_head=4, n_positions=128, bos_token_id=1, eos_token_id=2
        )
        config.update(overrides)
        model = transformers.GPT2LMHeadModel(config)
    elif kind in ("bert", "bert-base"):
        config = transformers.BertConfig(
            vocab_size=VOCAB,
            hidden_size=64,
            num_hidden_layers=3,
            num_attention_heads=4,
            intermediate_size=128,
            max_position_embeddings=128,
        )
        config.update(overrides)
        model = transformers.BertForMaskedLM(config) if kind == "bert" else transformers.BertModel(config)
    elif kind in ("roberta", "roberta-base"):
        config = transformers.RobertaConfig(
            vocab_size=VOCAB,
            hidden_size=64,
            num_hidden_layers=3,
            num_attention_heads=4,
            intermediate_size=128,
            max_position_embeddings=130,
        )
        config.update(overrides)
        model = (
            transformers.RobertaForMaskedLM(config)
            if kind == "roberta"
            else transformers.RobertaModel(config)
        )
    else:
        raise ValueError(kind)
    _randomize(model)
    return model.eval()


def _randomize(model: torch.nn.Module) -> None:
    """Non-trivial values everywhere (biases and norms too), so a wrong mapping cannot hide."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.02)


ZOO_CLASS = {
    "gpt2": zoo.GPT2ForCausalLM,
    "bert": zoo.BertForMaskedLM,
    "bert-base": zoo.BertModel,
    "roberta": zoo.RobertaForMaskedLM,
    "roberta-base": zoo.RobertaModel,
}


def reference_and_zoo(kind: str, directory: Path, **overrides):
    reference = tiny_reference(kind, **overrides)
    reference.save_pretrained(directory)
    return reference, ZOO_CLASS[kind].from_pretrained(directory)


def padded_batch(pad_id: int, left: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    """Three sequences of lengths 12, 7, 3 padded to 12 (right-padded unless ``left``)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = [12, 7, 3]
    input_ids = torch.full((3, 12), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((3, 12), dtype=torch.long)
    for row, length in enumerate(lengths):
        tokens = torch.randint(3, VOCAB, (length,), generator=generator)
        tokens[tokens == pad_id] = 5
        span = slice(12 - length, 12) if left else slice(0, length)
        input_ids[row, span] = tokens
        attention_mask[row, span] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}
