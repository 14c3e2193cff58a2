"""Language modelling: pre-train nanoGPT (``zoo.GPT``) on a text file, report perplexity, generate text.

The ``lm`` task (records ``{text}``, causal LM loss). The text file's lines are packed into blocks of
at most ``--max_length`` tokens; the last ``--validation_fraction`` of the blocks is held out (or give
``--validation_file``). For a tiny model a byte-level BPE tokenizer (``zoo.train_bpe_tokenizer``) is
trained on the training blocks' text first, and ``zoo.GPT`` keeps it (it is saved with the weights).
``trainers.run_task`` trains with the ``Trainer``, evaluates perplexity and next-token accuracy,
continues the ``--prompts`` greedily and writes the model, tokenizer, ``all_results.json``, a model
card (``README.md``) and ``loss_curve.png`` to ``--output_dir``; then a sampled text is printed.

On a CPU, offline, in about 40 s (the default)::

    python examples/language_modeling.py --output_dir outputs/lm
    python examples/language_modeling.py examples/configs/language_modeling.yaml   # the same run as YAML

The default ``tiny-gpt`` is a 0.9M-parameter nanoGPT trained FROM SCRATCH on
``examples/data/lm_corpus.txt`` (4.5 kB of short stories written for this project): it only shows
the pipeline; with so little text it learns spelling and common phrases, not stories.

Bigger runs: your own corpus and a bigger model (a config JSON in the zoo or transformers layout)::

    python examples/language_modeling.py --train_file input.txt --init_config my-gpt.json \\
        --vocab_size 8000 --max_length 256 --num_train_epochs 5 --output_dir outputs/lm-big
    python examples/language_modeling.py --model_name gpt2-base-en --learning_rate 1e-4 ...  # fine-tune
    python examples/language_modeling.py --model_name tiny-llama ...                          # other families

Scale out: ``accelerate launch --config_file trainers/configs/ddp.yaml examples/language_modeling.py ...``
(``fsdp2.yaml``, ``deepspeed_zero3.yaml`` likewise), or ``--deepspeed trainers/configs/ds_zero2.json``
with ``torchrun``; ``--bf16``, ``--gradient_checkpointing``, ``--push_to_hub --hub_model_id you/lm``
are the ``TrainingArguments`` flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import datasets
import torch
from common import (
    DataArguments,
    DataFileError,
    ModelArguments,
    Records,
    fine_tune,
    load_model,
    model_name_field,
    parse_arguments,
    read_lines,
    sample_file,
)
from transformers import TrainingArguments, set_seed

from tasks import get_task
from zoo.text_generation import generate_text

DEFAULTS = dict(
    output_dir="outputs/language-modeling",
    learning_rate=3e-3,
    num_train_epochs=30,
    per_device_train_batch_size=8,
    logging_steps=10,
    save_strategy="no",
    warmup_steps=10,
    seed=0,
)


@dataclass
class LMModelArguments(ModelArguments):
    model_name: str = model_name_field("tiny-gpt")
    vocab_size: int = field(
        default=1000, metadata={"help": "vocabulary size of the BPE trained for a tiny model"}
    )


@dataclass
class LMDataArguments(DataArguments):
    train_file: str | None = sample_file("lm_corpus.txt")
    max_length: int = field(default=64, metadata={"help": "tokens per training block"})
    validation_fraction: float = field(
        default=0.1, metadata={"help": "share of the blocks held out when no --validation_file is given"}
    )
    prompts: list[str] = field(
        default_factory=lambda: ["The keeper", "Every spring"], metadata={"help": "prompts to continue"}
    )
    max_new_tokens: int = field(default=30, metadata={"help": "tokens generated per prompt"})


def pack_blocks(lines: list[str], tokenizer, budget: int) -> list[str]:
    """Consecutive lines joined into texts of at most ``budget`` tokens; a longer line is cut into pieces."""
    blocks, current, used = [], [], 0
    for line in lines:
        ids = tokenizer(line + "\n", add_special_tokens=False)["input_ids"]
        if used + len(ids) > budget and current:
            blocks.append("".join(current))
            current, used = [], 0
        for start in range(0, len(ids), budget):
            piece = ids[start : start + budget]
            if len(piece) == budget:  # a full piece is a block of its own
                blocks.append(tokenizer.decode(piece))
            else:
                current.append(tokenizer.decode(piece))
                used += len(piece)
    if current:
        blocks.append("".join(current))
    return [block for block in blocks if block.strip()]


def main(argv=None):
    model_args, data_args, training_args = parse_arguments(
        [LMModelArguments, LMDataArguments, TrainingArguments], DEFAULTS, argv
    )
    if data_args.dataset_name:
        raise DataFileError("language_modeling.py reads a text file: give --train_file path.txt")
    task = get_task("lm")
    set_seed(training_args.seed)
    train_lines = read_lines(data_args.train_file)
    texts = [line for line in train_lines if line.strip()]
    model, tokenizer = load_model(task, model_args, texts, checkpoint=training_args.resume_from_checkpoint)
    budget = data_args.max_length - 1  # the task appends the end-of-text token
    train_blocks = pack_blocks(train_lines, tokenizer, budget)
    if data_args.validation_file:
        validation_blocks = pack_blocks(read_lines(data_args.validation_file), tokenizer, budget)
    else:
        held_out = int(len(train_blocks) * data_args.validation_fraction)
        if held_out:
            train_blocks, validation_blocks = train_blocks[:-held_out], train_blocks[-held_out:]
        else:
            validation_blocks = []
    if data_args.max_train_samples is not None:
        train_blocks = train_blocks[: data_args.max_train_samples]
    print(
        f"{len(train_blocks)} training and {len(validation_blocks)} validation blocks of <= {budget} tokens"
    )
    train = Records(
        datasets.Dataset.from_dict({"text": train_blocks}), data_args.train_file, {"text": "text"}
    )
    validation = (
        Records(datasets.Dataset.from_dict({"text": validation_blocks}), "held-out blocks", {"text": "text"})
        if validation_blocks
        else None
    )
    result = fine_tune(
        task,
        model_args,
        data_args,
        training_args,
        train,
        validation,
        tokenizer_fields=("text",),
        predict_inputs=data_args.prompts,
        model=model,
        tokenizer=tokenizer,
    )
    if training_args.should_log and data_args.prompts:
        torch.manual_seed(training_args.seed)
        sample = generate_text(
            result.trainer.model, tokenizer, data_args.prompts[0], max_new_tokens=data_args.max_new_tokens,
            do_sample=True, top_k=20, temperature=0.8, pad_token_id=tokenizer.pad_token_id,
        )  # fmt: skip
        print(f"\nsampled (top-k 20, temperature 0.8):\n{sample}")
    return result


if __name__ == "__main__":
    main()
