"""Quickstart: zoo families next to transformers', then a tiny GPT-2 trained and generating.

Runs on a laptop CPU in well under a minute, offline:

    python examples/quickstart.py

1. Builds tiny transformers GPT-2 / BERT / RoBERTa / Llama / Qwen2 / T5 models with random
   weights, loads the saved checkpoints into the zoo classes (through the weight maps) and prints
   the largest logit difference on a padded batch.
2. Trains a byte-level BPE tokenizer and a tiny zoo GPT-2 on a built-in text with the Hugging Face
   ``Trainer``, then generates text with ``generate`` (greedy, KV cache).
3. Exports the trained model to the transformers layout and generates the same text with plain
   ``transformers.GPT2LMHeadModel``.

Every printed check (parity within 1e-4, the loss going down, cached == uncached generation, identical
tokens after export) is also enforced: the script exits with status 1, naming the checks that
failed, if any does not hold.

Scale up: ``--steps``, ``--hidden_size``, ``--layers``; point ``--text_file`` at your own corpus.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
import transformers
from tokenizers import ByteLevelBPETokenizer

import zoo

TEXT = """\
The zoo keeps every model family in one place. Each family is written layer by layer, block by block,
and each model is an ordinary transformers model. A model loads from a local directory or from the Hub,
trains with the Trainer, and saves in a layout that plain transformers reads back. The keeper checks
every model against the reference implementation with the same weights, and the numbers must agree.
The zoo opens in the morning. The keeper feeds the models, checks their numbers, and writes them down.
"""


PARITY_TOLERANCE = 1e-4


def parity_table(workdir: Path) -> list[str]:
    """Print each family's largest logit difference from transformers; the failed checks."""
    torch.manual_seed(0)
    small = dict(
        vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128
    )
    cases = {
        "GPT-2": (
            transformers.GPT2LMHeadModel(
                transformers.GPT2Config(vocab_size=300, n_embd=64, n_layer=2, n_head=4)
            ),
            zoo.GPT2ForCausalLM,
        ),
        "BERT": (transformers.BertForMaskedLM(transformers.BertConfig(**small)), zoo.BertForMaskedLM),
        "RoBERTa": (
            transformers.RobertaForMaskedLM(transformers.RobertaConfig(**small)),
            zoo.RobertaForMaskedLM,
        ),
        "Llama": (
            transformers.LlamaForCausalLM(transformers.LlamaConfig(**small, num_key_value_heads=2)),
            zoo.LlamaForCausalLM,
        ),
        "Qwen2": (
            transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**small, num_key_value_heads=2)),
            zoo.LlamaForCausalLM,
        ),
        "T5": (
            transformers.T5ForConditionalGeneration(
                transformers.T5Config(
                    vocab_size=300,
                    d_model=64,
                    d_kv=16,
                    d_ff=128,
                    num_layers=2,
                    num_heads=4,
                    feed_forward_proj="gated-gelu",
                    decoder_start_token_id=0,
                )
            ),
            zoo.T5ForConditionalGeneration,
        ),
    }
    input_ids = torch.randint(3, 300, (2, 16))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 10:] = 0
    failed = []
    print(f"{'family':<8} {'transformers class':<28} {'zoo class':<28} max |logits diff|")
    for family, (reference, zoo_class) in cases.items():
        directory = workdir / family
        reference.eval().save_pretrained(directory)
        model = zoo_class.from_pretrained(directory)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if reference.config.is_encoder_decoder:
            batch["decoder_input_ids"] = input_ids
        with torch.no_grad():
            expected = reference(**batch).logits
            actual = model(**batch).logits
        keep = attention_mask.bool()
        diff = (expected[keep] - actual[keep]).abs().max().item()
        print(f"{family:<8} {type(reference).__name__:<28} {zoo_class.__name__:<28} {diff:.2e}")
        if not diff <= PARITY_TOLERANCE:
            failed.append(f"{family} logits differ from transformers by {diff:.2e} > {PARITY_TOLERANCE}")
    return failed


def train_and_generate(args, workdir: Path) -> list[str]:
    """Train, generate, export and generate again; the failed checks."""
    text = Path(args.text_file).read_text() if args.text_file else TEXT
    tokenizer_model = ByteLevelBPETokenizer()
    tokenizer_model.train_from_iterator(
        [text], vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"], show_progress=False
    )
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_model._tokenizer, eos_token="<|endoftext|>"
    )
    tokenizer.pad_token = tokenizer.eos_token

    ids = tokenizer(text)["input_ids"]
    block = 32
    samples = [ids[i : i + block] for i in range(0, len(ids) - block, 4)]
    dataset = [{"input_ids": s, "labels": s} for s in samples]

    config = zoo.GPT2Config(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden_size,
        num_hidden_layers=args.layers,
        num_attention_heads=4,
        max_position_embeddings=128,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    model = zoo.GPT2ForCausalLM(config)
    print(f"\ntraining a {model.get_num_params() / 1e6:.2f}M-parameter zoo GPT-2 on {len(ids)} tokens")
    training_args = transformers.TrainingArguments(
        output_dir=str(workdir / "run"),
        max_steps=args.steps,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        warmup_steps=10,
        logging_steps=max(args.steps // 5, 1),
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=args.bf16,
        seed=0,
        dataloader_pin_memory=False,  # nothing to pin to without an accelerator
    )
    collator = None
    if args.packing:  # blocks here are all full, so rows hold one each: shown for the flag, not the speed
        from tasks.packing import packing_collator

        collator = packing_collator("lm", tokenizer, model, block)
    trainer = transformers.Trainer(
        model=model, args=training_args, train_dataset=dataset, data_collator=collator
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    print(f"loss: {losses[0]:.3f} -> {losses[-1]:.3f}")
    failed = (
        [] if losses[-1] < losses[0] else [f"the loss did not go down ({losses[0]:.3f} -> {losses[-1]:.3f})"]
    )

    model.eval()
    prompt = tokenizer(args.prompt, return_tensors="pt")
    generated = model.generate(**prompt, max_new_tokens=30, do_sample=False)
    uncached = model.generate(**prompt, max_new_tokens=30, do_sample=False, use_cache=False)
    print(f"\nzoo GPT-2 generates:          {tokenizer.decode(generated[0])!r}")
    print(f"same tokens without the KV cache: {torch.equal(generated, uncached)}")
    if not torch.equal(generated, uncached):
        failed.append("cached generation differs from uncached generation")

    exported = model.save_reference(workdir / "exported")
    plain = transformers.GPT2LMHeadModel.from_pretrained(exported).eval()
    plain_generated = plain.generate(**prompt, max_new_tokens=30, do_sample=False)
    print(f"transformers GPT2LMHeadModel: {tokenizer.decode(plain_generated[0])!r}")
    print(f"identical tokens after export: {torch.equal(generated, plain_generated)}")
    if not torch.equal(generated, plain_generated):
        failed.append("transformers generates other tokens from the exported model")
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--text_file", default=None)
    parser.add_argument("--prompt", default="The keeper")
    parser.add_argument("--bf16", action="store_true", help="train in bf16 autocast")
    parser.add_argument(
        "--packing",
        action="store_true",
        help="pack the blocks with tasks.packing (off: the fixed-length blocks leave nothing to pack)",
    )
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # per-file save / load bars of tiny models
    with tempfile.TemporaryDirectory() as workdir:
        failed = parity_table(Path(workdir)) + train_and_generate(args, Path(workdir))
    if failed:
        print("\nFAILED: " + "; ".join(failed), file=sys.stderr)
        sys.exit(1)
    print("\nall checks passed")


if __name__ == "__main__":
    main()
