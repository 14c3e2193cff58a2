"""Train a tiny zoo GPT-2 with the Hugging Face Trainer and write what each rank saw as JSON.

Launched by tests/test_distributed.py, one process or several:

    python tests/distributed_scripts/train_tiny_lm.py --out /tmp/r.json --batch 4
    python -m torch.distributed.run --nproc_per_node 2 --master_port 29512 \
        tests/distributed_scripts/train_tiny_lm.py --out /tmp/r.json --batch 2
    ... --deepspeed trainers/configs/ds_zero3.json --save-dir /tmp/saved

Every rank writes ``<out>.rank<N>.json``: the losses the Trainer logged per step, the parallel mode
Accelerate chose, a checksum of the final parameters and, under DeepSpeed ZeRO-3, how each parameter
was partitioned. Under ZeRO-3 rank 0 also writes ``<out>.logits.pt``: the logits of the trained model,
computed by a plain (unwrapped) copy built from the parameters gathered across ranks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import datasets  # noqa: E402
from transformers import Trainer, TrainingArguments, default_data_collator  # noqa: E402

import zoo  # noqa: E402

VOCAB, LENGTH, EXAMPLES = 64, 16, 8


def tiny_config() -> zoo.GPT2Config:
    return zoo.GPT2Config(
        vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        max_position_embeddings=LENGTH, hidden_dropout=0.0, attention_dropout=0.0, embedding_dropout=0.0,
        bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )  # fmt: skip


def tiny_model() -> zoo.GPT2ForCausalLM:
    torch.manual_seed(0)  # the same initial weights in every process and every run
    return zoo.GPT2ForCausalLM(tiny_config())


def training_data() -> datasets.Dataset:
    """Arithmetic progressions modulo the vocabulary: learnable, so the loss falls within a few steps."""
    generator = torch.Generator().manual_seed(1)
    starts = torch.randint(0, VOCAB, (EXAMPLES,), generator=generator)
    strides = torch.randint(1, 5, (EXAMPLES,), generator=generator)
    rows = ((starts[:, None] + strides[:, None] * torch.arange(LENGTH)) % VOCAB).tolist()
    return datasets.Dataset.from_dict({"input_ids": rows, "labels": rows})


def probe_inputs() -> torch.Tensor:
    return torch.tensor([[3, 5, 7, 9, 11, 13, 15, 17], [60, 61, 62, 63, 0, 1, 2, 3]])


def partition_report(model: torch.nn.Module) -> list[dict]:
    """Per parameter: full size (``ds_numel``), this rank's shard (``ds_tensor``) and the visible size."""
    return [
        {
            "name": name,
            "ds_numel": int(param.ds_numel),
            "local_numel": int(param.ds_tensor.numel()),
            "visible_numel": int(param.numel()),
        }
        for name, param in model.named_parameters()
        if hasattr(param, "ds_tensor")
    ]


def gathered_logits(model: torch.nn.Module) -> torch.Tensor:
    """The trained ZeRO-3 weights, gathered from every rank into an ordinary model, run on the probe."""
    import deepspeed

    with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None):
        state = {name: param.detach().clone() for name, param in model.named_parameters()}
    plain = zoo.GPT2ForCausalLM(tiny_config())
    missing, unexpected = plain.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)  # tied to embeddings
    plain.tie_weights()
    plain.eval()
    with torch.no_grad():
        return plain(probe_inputs()).logits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, help="results prefix: <out>.rank<N>.json is written")
    parser.add_argument("--batch", type=int, required=True, help="per-device train batch size")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--deepspeed", default=None, help="DeepSpeed JSON config path")
    parser.add_argument("--save-dir", default=None, help="trainer.save_model() target after training")
    options = parser.parse_args()

    model = tiny_model()
    args = TrainingArguments(
        output_dir=str(Path(options.out).parent / "trainer-output"),
        use_cpu=True,
        ddp_backend="gloo" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        deepspeed=options.deepspeed,
        per_device_train_batch_size=options.batch,
        max_steps=options.steps,
        learning_rate=options.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=0,
        data_seed=0,
        train_sampling_strategy="sequential",
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=training_data(), data_collator=default_data_collator
    )
    trainer.train()

    rank = args.process_index
    unwrapped = trainer.model_wrapped.module if options.deepspeed else trainer.model
    result = {
        "rank": rank,
        "world_size": args.world_size,
        "parallel_mode": str(args.parallel_mode),
        "distributed_type": str(trainer.accelerator.distributed_type),
        "losses": [entry["loss"] for entry in trainer.state.log_history if "loss" in entry],
        "steps": trainer.state.global_step,
        "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
    }
    zero_stage = trainer.accelerator.state.deepspeed_plugin.zero_stage if options.deepspeed else 0
    result["zero_stage"] = zero_stage
    if zero_stage == 3:
        result["partitions"] = partition_report(unwrapped)
        logits = gathered_logits(unwrapped)
        if rank == 0:
            torch.save(logits, f"{options.out}.logits.pt")
    else:
        result["param_sum_squares"] = float(
            sum(p.detach().double().pow(2).sum() for p in unwrapped.parameters())
        )
    if options.save_dir:
        trainer.save_model(options.save_dir)
    Path(f"{options.out}.rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from shutdown import finish  # the launched script's folder is on sys.path; the tests import this file

    main()
    finish()
