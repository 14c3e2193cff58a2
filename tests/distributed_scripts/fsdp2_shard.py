"""FSDP2 through ModelInterface on CPU (gloo); every rank writes what it saw to ``<out_prefix>.<family>.rank<N>.json``.

    python -m torch.distributed.run --nproc_per_node 2 --master_port PORT \\
        tests/distributed_scripts/fsdp2_shard.py OUT_PREFIX llama,gpt2

tests/test_interface.py checks the JSON: the shard size and placement of every parameter, the loss of
each train step, and the sharded model's logits against a fresh model loaded from the gathered full
state dict that ``ModelInterface.save`` wrote.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch.distributed as dist
from interface_common import LR, STEPS, reload_check, tiny_bundle, training_batch
from shutdown import finish

from trainers.interface import ModelInterface


def run(out_prefix: str, family: str) -> None:
    rank = dist.get_rank()
    bundle = tiny_bundle(family)
    full_shapes = {name: list(p.shape) for name, p in bundle.module.named_parameters()}
    interface = ModelInterface(bundle, lr=LR, backend="fsdp2")
    shards = {
        name: {
            "type": type(param).__name__,
            "local_numel": param.to_local().numel(),
            "full_shape": full_shapes[name],
            "placements": [str(p) for p in param.placements],
        }
        for name, param in interface.module.named_parameters()
    }
    batch = training_batch(len(bundle.tokenizer))
    steps = [interface.train_step(batch) for _ in range(STEPS)]
    logits = interface.inference({"input_ids": batch["input_ids"]})["logits"]
    save_dir = Path(f"{out_prefix}.{family}.model")
    interface.save(save_dir)  # collective: every rank gathers, rank 0 writes
    result = {
        "rank": rank,
        "world_size": dist.get_world_size(),
        "shards": shards,
        "losses": [s["loss"].item() for s in steps],
        "grad_norms": [s["grad_norm"].item() for s in steps],
    }
    if rank == 0:
        result.update(reload_check(save_dir, batch["input_ids"], logits))
    Path(f"{out_prefix}.{family}.rank{rank}.json").write_text(json.dumps(result))
    dist.barrier()  # rank 0's reload check must finish before the other rank shards the next model or exits


if __name__ == "__main__":
    dist.init_process_group("gloo")
    for family in sys.argv[2].split(","):
        run(sys.argv[1], family)
    finish()
