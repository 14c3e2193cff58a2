"""DeepSpeed ZeRO through ModelInterface on CPU (gloo); every rank writes ``<out_prefix>.rank<N>.json``.

    python -m torch.distributed.run --nproc_per_node 2 --master_port PORT \\
        tests/distributed_scripts/interface_deepspeed.py OUT_PREFIX [zero_stage]

The first run JIT-builds a DeepSpeed communication op (~30 s, needs g++). tests/test_interface.py
checks the losses against a single-process run and the saved model's logits.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch.distributed as dist
from interface_common import LR, STEPS, reload_check, tiny_bundle, training_batch
from shutdown import finish

from trainers.interface import ModelInterface


def main(out_prefix: str, zero_stage: int) -> None:
    bundle = tiny_bundle("llama")
    interface = ModelInterface(bundle, lr=LR, backend="deepspeed", zero_stage=zero_stage)
    rank = dist.get_rank()
    batch = training_batch(len(bundle.tokenizer))
    steps = [interface.train_step(batch) for _ in range(STEPS)]
    logits = interface.inference({"input_ids": batch["input_ids"]})["logits"]
    save_dir = Path(f"{out_prefix}.model")
    interface.save(save_dir)
    result = {
        "rank": rank,
        "world_size": dist.get_world_size(),
        "engine": type(interface.module).__name__,
        "zero_stage": interface.module.zero_optimization_stage(),
        "losses": [s["loss"].item() for s in steps],
        "grad_norms": [s["grad_norm"].item() for s in steps],
    }
    if rank == 0:
        result.update(reload_check(save_dir, batch["input_ids"], logits))
    Path(f"{out_prefix}.rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    finish()  # its barrier: rank 0's reload check finishes before any rank exits
