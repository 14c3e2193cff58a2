"""What the distributed ModelInterface scripts share: a seeded tiny model, one batch, and the reload check."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for tiny_models

from tiny_models import bpe_tokenizer, tiny_pretrained_model  # noqa: E402

import zoo  # noqa: E402
from auto_loader import ModelBundle  # noqa: E402

STEPS = 3
LR = 3e-3


def tiny_bundle(family: str) -> ModelBundle:
    """The same weights on every rank (tiny_pretrained_model seeds itself)."""
    tokenizer = bpe_tokenizer()
    return ModelBundle(family, tiny_pretrained_model(family, tokenizer), tokenizer, torch.device("cpu"))


def training_batch(vocab_size: int) -> dict[str, torch.Tensor]:
    """The same batch on every rank and in the single-process reference of the test."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, vocab_size, (4, 12), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}


def reload_check(save_dir: Path, input_ids: torch.Tensor, logits: torch.Tensor) -> dict:
    """Logits of a fresh model loaded from ``save_dir`` against ``logits`` of the trained one."""
    reloaded = zoo.load(save_dir)(input_ids=input_ids).logits
    return {
        "max_logit_difference": (reloaded - logits).abs().max().item(),
        "logits_equal": torch.equal(reloaded, logits),
        "tokenizer_saved": (save_dir / "tokenizer.json").is_file(),
    }
