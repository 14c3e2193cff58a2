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
- Batch-1 greedy decoding of the 6-layer Llama and GPT-2 shapes (vocab 8,192): transformers and zoo
  with a dynamic cache, zoo with the static cache and its compiled decode step, per dtype (fp32, bf16
  where native, torchao int8 weight-only where torchao is installed), each row's tokens/s against the
  bandwidth limit (weight bytes per token / the measured copy bandwidth).

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
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark as bench  # noqa: E402

from zoo.decoding import compile_config_for_decoding  # noqa: E402

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


def copy_bandwidth(megabytes: int = 512, repeats: int = 5) -> float:
    """The machine's memory copy bandwidth, bytes/s (read + write of a large fp32 tensor, best of runs)."""
    source = torch.empty(megabytes * 2**20 // 4)
    target = torch.empty_like(source)
    target.copy_(source)
    best = min(_seconds(lambda: target.copy_(source)) for _ in range(repeats))
    return 2 * source.numel() * 4 / best


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stored_bytes(tensor: torch.Tensor) -> int:
    """The bytes a tensor occupies: for a tensor subclass (torchao's int8 weights report the float
    dtype they stand for) the sum of the inner tensors it is made of, int8 data plus scales."""
    if hasattr(tensor, "__tensor_flatten__"):
        names, _ = tensor.__tensor_flatten__()
        return sum(stored_bytes(getattr(tensor, name)) for name in names)
    return tensor.numel() * tensor.element_size()


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes a decode step streams: every parameter once (a tied embedding once)."""
    return sum(stored_bytes(p) for p in model.parameters())


def decode_variants(family: str, shape: dict, workdir: Path, dtypes: list[str]) -> dict[str, tuple]:
    """(model, generate options) per decode row: transformers and zoo, each dtype, dynamic cache and the
    static cache with its compiled decode step."""
    zoo_model, reference, reference_dir = bench.build_pair(family, shape, workdir, seed=1, tag="-decode")
    variants = {}
    for dtype in dtypes:
        torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
        ours = bench.zoo_class(family).from_pretrained(reference_dir, dtype=torch_dtype).eval()
        theirs = bench.hf_class(family).from_pretrained(reference_dir, dtype=torch_dtype).eval()
        variants[f"transformers {dtype}"] = (theirs, {})
        variants[f"zoo {dtype}"] = (ours, {})
        compiled = {"cache_implementation": "static", "compile_config": compile_config_for_decoding()}
        variants[f"zoo {dtype} static compiled"] = (ours, compiled)
        variants[f"transformers {dtype} static compiled"] = (theirs, dict(compiled))
    try:
        from torchao.quantization import Int8WeightOnlyConfig
        from transformers import TorchAoConfig

        quantization = TorchAoConfig(quant_type=Int8WeightOnlyConfig())
        variants["transformers int8"] = (
            bench.hf_class(family).from_pretrained(reference_dir, quantization_config=quantization).eval(),
            {},
        )
        zoo_int8 = bench.zoo_class(family).from_pretrained(reference_dir, quantization_config=quantization)
        variants["zoo int8"] = (zoo_int8.eval(), {})
        # Eager int8 weight-only matmuls dequantise each weight to fp32 first; compiled, inductor
        # fuses the dequantisation into the matmul, so the step reads the int8 bytes only.
        variants["zoo int8 static compiled"] = (
            zoo_int8,
            {"cache_implementation": "static", "compile_config": compile_config_for_decoding()},
        )
    except ImportError as error:
        variants["int8 skipped"] = (
            None,
            {"reason": f"torchao is not installed ({error}): pip install 'zoo-models[quantization]'"},
        )
    del zoo_model, reference
    return variants


def bench_decode(shapes: bench.Shapes, workdir: Path, dtypes: list[str], new_tokens: int) -> dict:
    """Batch-1 greedy decoding tokens/s, and each row's distance from the bandwidth limit."""
    bandwidth = copy_bandwidth()
    out: dict = {"copy_bandwidth_gb_s": bandwidth / 1e9}
    bench.log(f"[decode] measured copy bandwidth {bandwidth / 1e9:.1f} GB/s")
    for label, field in (("llama", "llama"), ("gpt2", "gpt2_small_vocab")):
        variants = decode_variants(label, getattr(shapes, field), workdir, dtypes)
        prompt = torch.randint(2, 100, (1, 8), generator=torch.Generator().manual_seed(3))
        rows = {}
        for name, (model, options) in variants.items():
            if model is None:
                rows[name] = options
                bench.log(f"[decode] {label}: {name}: {options['reason']}")
                continue
            config = model.config
            pad = config.pad_token_id if config.pad_token_id is not None else config.eos_token_id

            def run(model=model, options=options, pad=pad, prompt=prompt):
                with torch.no_grad():
                    return model.generate(
                        prompt,
                        attention_mask=torch.ones_like(prompt),
                        max_new_tokens=new_tokens,
                        min_new_tokens=new_tokens,
                        do_sample=False,
                        pad_token_id=pad,
                        **options,
                    )

            first = _seconds(run)  # warm-up; compiles the static-cache decode step
            sequences = run()
            seconds = statistics.median(_seconds(run) for _ in range(3))
            bytes_per_token = weight_bytes(model)
            limit = bytes_per_token / bandwidth  # seconds per token if only the weights' streaming counted
            rows[name] = {
                "tokens_per_s": new_tokens / seconds,
                "first_call_s": first,
                "weight_mb": bytes_per_token / 1e6,
                "bandwidth_limit_tokens_per_s": 1 / limit,
                "times_the_limit": (seconds / new_tokens) / limit,
                "tokens": sequences[0, -new_tokens:].tolist(),
            }
            bench.log(
                f"[decode] {label} {name}: {rows[name]['tokens_per_s']:.1f} tok/s, "
                f"{rows[name]['times_the_limit']:.2f}x its bandwidth limit "
                f"({bytes_per_token / 1e6:.0f} MB of weights per token)"
            )
        base = rows["zoo fp32"]["tokens_per_s"]
        for row in rows.values():
            if "tokens_per_s" in row:
                row["x_zoo_fp32"] = row["tokens_per_s"] / base
        reference_tokens = rows["transformers fp32"]["tokens"]
        rows["zoo fp32"]["same_tokens_as_transformers"] = rows["zoo fp32"]["tokens"] == reference_tokens
        out[label] = rows
        del variants
        gc.collect()
    return out


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
    parser.add_argument("--only", nargs="+", choices=("train", "memory", "profile", "decode"), default=None)
    parser.add_argument("--new-tokens", type=int, default=64)
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
        sections = args.only or ("train", "memory", "profile", "decode")
        if "train" in sections:
            results["train"] = bench_train(shapes, workdir, dtypes, repeats)
        if "memory" in sections:
            results["memory"] = bench_memory(shapes, dtypes)
        if "profile" in sections:
            results["profile"] = profile_step(shapes, workdir)
        if "decode" in sections:
            new_tokens = 16 if args.quick else args.new_tokens
            results["decode"] = bench_decode(shapes, workdir, dtypes, new_tokens)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1, default=str))
    if "train" in results:
        chart(results, args.output.with_suffix(".png"))
    bench.log(f"wrote {args.output} and {args.output.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
