#!/usr/bin/env python
"""Training speed the defaults of transformers do not have: the chunked loss and whole-graph compile.

Rows (side by side in one run, interleaved repetitions, medians; identical weights):

- GPT-2 shape (vocab 50,257) and Llama shape (vocab 8,192) training steps (forward, backward, AdamW)
  of transformers eager, transformers under ``torch.compile`` (its default: graph breaks allowed),
  zoo with the plain loss (``fused_loss = False``: whole logits, transformers' loss), zoo (the chunked
  loss) and zoo compiled (``fullgraph=True``); fp32, and bf16 autocast where the CPU multiplies bf16
  natively (elsewhere the row is skipped with the reason: oneDNN falls back to a scalar loop).
- Peak memory of a training step (one fresh ``spawn`` process per implementation: VmHWM minus the RSS
  before the first step), transformers eager against zoo.
- Where the zoo step's time goes: the top operators of a profiled step.

Compile time is measured apart (the first compiled step minus a steady one). Writes
``benchmarks/results/speed.json`` and ``speed.png`` (the ratios to transformers eager).

    python benchmarks/speed.py            # about 10 minutes on 2 cores
    python benchmarks/speed.py --quick    # tiny shapes, a smoke run
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import multiprocessing
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark as bench  # noqa: E402

RESULTS = bench.HERE / "results"
IMPLEMENTATIONS = ("transformers", "transformers compiled", "zoo plain loss", "zoo", "zoo compiled")
FAMILIES = (("gpt2", "gpt2"), ("llama", "llama"))  # (row, Shapes field)


def native_bf16() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def build(family: str, shape: dict, workdir: Path) -> dict[str, torch.nn.Module]:
    zoo_model, reference, _ = bench.build_pair(family, shape, workdir)
    plain = bench.zoo_class(family)(zoo_model.config)
    plain.load_state_dict(zoo_model.state_dict())
    plain.fused_loss = False
    zoo_compiled_base = bench.zoo_class(family)(zoo_model.config)
    zoo_compiled_base.load_state_dict(zoo_model.state_dict())
    reference_compiled_base = type(reference)(reference.config)
    reference_compiled_base.load_state_dict(reference.state_dict())
    return {
        "transformers": reference,
        "transformers compiled": torch.compile(reference_compiled_base),
        "zoo plain loss": plain,
        "zoo": zoo_model,
        "zoo compiled": torch.compile(zoo_compiled_base, fullgraph=True),
    }


def bench_train(shapes: bench.Shapes, workdir: Path, dtypes: list[str], repeats: int) -> dict:
    out = {}
    for label, field in FAMILIES:
        shape = getattr(shapes, field)
        models = build(label, shape, workdir)
        batch = bench.make_batch(label, shape["vocab_size"], shapes.batch, shapes.seq)
        tokens = shapes.batch * shapes.seq
        for dtype in dtypes:
            bf16 = dtype == "bf16"
            optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-4) for name, m in models.items()}
            for model in models.values():
                model.train()
            first = {}
            compile_seconds = {}
            for name, model in models.items():
                start = time.perf_counter()
                first[name] = bench.train_step(model, optimizers[name], batch, bf16)
                compile_seconds[name] = time.perf_counter() - start
            reference_loss = first["transformers"]
            tolerance = 2e-2 if bf16 else 1e-4
            for name, loss in first.items():
                assert abs(loss - reference_loss) <= tolerance * abs(reference_loss), (name, first)
            timing = bench.interleaved(
                {
                    name: functools.partial(bench.train_step, models[name], optimizers[name], batch, bf16)
                    for name in models
                },
                repeats=repeats,
                warmup=1,
            )
            medians = timing.median_s()
            for name in models:
                compile_seconds[name] = max(compile_seconds[name] - medians[name], 0.0)
            entry = {
                "batch": shapes.batch,
                "seq": shapes.seq,
                "vocab_size": shape["vocab_size"],
                "first_step_loss": first,
                **timing.as_dict(),
                "tokens_per_s": {name: tokens / t for name, t in medians.items()},
                "compile_seconds": {k: v for k, v in compile_seconds.items() if k.endswith("compiled")},
                "paired_speedup_vs_transformers": {
                    name: timing.paired_speedup(name, "transformers")
                    for name in models
                    if name != "transformers"
                },
                "paired_speedup_vs_transformers_compiled": {
                    name: timing.paired_speedup(name, "transformers compiled")
                    for name in models
                    if name.startswith("zoo")
                },
            }
            out[f"{label}_{dtype}"] = entry
            speedups = entry["paired_speedup_vs_transformers"]
            bench.log(
                f"[train] {label} {dtype}: "
                + ", ".join(f"{name} {entry['tokens_per_s'][name]:.0f} tok/s" for name in models)
                + "; x transformers: "
                + ", ".join(f"{name} {value:.2f}" for name, value in speedups.items())
            )
        del models
        gc.collect()
    return out


def _memory_child(spec: dict, queue) -> None:
    try:
        torch.set_num_threads(spec["threads"])
        family, impl, bf16 = spec["family"], spec["impl"], spec["dtype"] == "bf16"
        zoo_config, ref_config = bench.build_configs(family, spec["shape"])
        torch.manual_seed(0)
        if impl == "transformers":
            model = bench.new_reference(family, ref_config)
        else:
            model = bench.zoo_class(family)(zoo_config)
            model.fused_loss = impl == "zoo"
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        batch = bench.make_batch(family, zoo_config.vocab_size, spec["batch"], spec["seq"])
        bench.train_step(model, optimizer, batch, bf16)  # AdamW state allocated
        gc.collect()
        before = bench.proc_status_kib("VmRSS")["VmRSS"]
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        for _ in range(spec["steps"]):
            bench.train_step(model, optimizer, batch, bf16)
        after = bench.proc_status_kib("VmHWM")["VmHWM"]
        queue.put({"step_peak_mib": (after - before) / 1024})
    except BaseException as error:
        queue.put({"error": f"{type(error).__name__}: {error}"})
        raise


def bench_memory(shapes: bench.Shapes, dtypes: list[str]) -> dict:
    """Peak memory a training step adds over the model, its gradients and AdamW state (all equal)."""
    ctx = multiprocessing.get_context("spawn")
    out = {}
    for label, field in FAMILIES:
        for dtype in dtypes:
            entry = {}
            for impl in ("transformers", "zoo plain loss", "zoo"):
                spec = dict(
                    family=label,
                    impl=impl,
                    dtype=dtype,
                    shape=getattr(shapes, field),
                    batch=shapes.batch,
                    seq=shapes.seq,
                    steps=2,
                    threads=torch.get_num_threads(),
                )
                queue = ctx.Queue()
                process = ctx.Process(target=_memory_child, args=(spec, queue))
                process.start()
                report = queue.get(timeout=900)
                process.join()
                if "error" in report:
                    raise RuntimeError(f"memory child {label}/{impl}/{dtype}: {report['error']}")
                entry[impl] = report["step_peak_mib"]
            entry["zoo_over_transformers"] = entry["zoo"] / entry["transformers"]
            out[f"{label}_{dtype}"] = entry
            bench.log(
                f"[memory] {label} {dtype}: step peak over the trained state: transformers "
                f"{entry['transformers']:.0f} MiB, zoo plain loss {entry['zoo plain loss']:.0f} MiB, zoo "
                f"{entry['zoo']:.0f} MiB ({entry['zoo_over_transformers']:.2f}x)"
            )
    return out


def profile_step(shapes: bench.Shapes, workdir: Path) -> dict:
    """The zoo GPT-2 step's top operators by self CPU time (where the time goes)."""
    model, _, _ = bench.build_pair("gpt2", shapes.gpt2, workdir, tag="-profile")
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = bench.make_batch("gpt2", shapes.gpt2["vocab_size"], shapes.batch, shapes.seq)
    bench.train_step(model, optimizer, batch, False)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        bench.train_step(model, optimizer, batch, False)
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    top = [{"op": e.key, "share": e.self_cpu_time_total / total, "calls": e.count} for e in events[:12]]
    bench.log("[profile] zoo gpt2 fp32 step: " + ", ".join(f"{t['op']} {t['share']:.0%}" for t in top[:6]))
    return {"top_ops": top}


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(key, entry["paired_speedup_vs_transformers"]) for key, entry in results["train"].items()]
    names = [name for name in IMPLEMENTATIONS if name != "transformers"]
    figure, axis = plt.subplots(figsize=(10, 1.2 + 0.9 * len(rows)))
    height = 0.8 / len(names)
    for i, name in enumerate(names):
        axis.barh(
            [r + i * height for r in range(len(rows))],
            [speedups[name] for _, speedups in rows],
            height,
            label=name,
        )
    axis.axvline(1.0, color="black", linewidth=0.8)
    axis.set_yticks([r + 0.4 - height / 2 for r in range(len(rows))], [key for key, _ in rows])
    axis.set_xlabel("training tokens/s, x transformers eager (same run, same weights)")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes, a smoke run")
    parser.add_argument("--output", type=Path, default=RESULTS / "speed.json")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    shapes = bench.quick_shapes() if args.quick else bench.Shapes()
    repeats = args.repeats or (2 if args.quick else 5)
    dtypes = ["fp32"]
    results: dict = {"machine": bench.machine_info(), "native_bf16": native_bf16()}
    if native_bf16():
        dtypes.append("bf16")
    else:
        results["bf16_skipped"] = (
            "this CPU has no native bf16 matmul (no AVX512-BF16 / AMX): oneDNN runs bf16 matmuls as a "
            "scalar loop, several times slower than fp32, so bf16 rows measure the fallback, not the models"
        )
        bench.log(f"[train] bf16 rows skipped: {results['bf16_skipped']}")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        results["train"] = bench_train(shapes, workdir, dtypes, repeats)
        results["memory"] = bench_memory(shapes, dtypes)
        results["profile"] = profile_step(shapes, workdir)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1, default=str))
    chart(results, args.output.with_suffix(".png"))
    bench.log(f"wrote {args.output} and {args.output.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
