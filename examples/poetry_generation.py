"""Poetry generation: fine-tune a language model to write a poem for a title, evaluate ROUGE, write poems.

The ``poetry-generation`` task: records ``{source, target}``; here the source is FlagAI's prompt
``"<title>：<form>"`` built from a title column and a form column (``--form_column ""`` leaves the form
out) and the target is the poem. GPT-2 / Llama learn it as a prefix LM (the loss covers the poem
only), T5 as an encoder-decoder, BERT as UniLM. ``trainers.run_task`` trains with the
``Seq2SeqTrainer``, evaluates ROUGE-1/2/L on generated poems, writes poems for the first validation
titles and saves the model, tokenizer, ``all_results.json``, a model card (``README.md``) and
``loss_curve.png`` to ``--output_dir``.

On a CPU, offline, in about 30 s (the default)::

    python examples/poetry_generation.py --output_dir outputs/poetry
    python examples/poetry_generation.py examples/configs/poetry_generation.yaml   # the same run as YAML

The default model ``tiny-gpt2`` is a 0.14M-parameter GPT-2 trained FROM SCRATCH on the 16 four-line
poems of ``examples/data/poetry_train.jsonl`` (written for this project) with a byte-level BPE
tokenizer trained on them (``zoo.train_bpe_tokenizer``): it only shows the pipeline end to end.

With a real model and your data (json / jsonl / csv / tsv with title, form and poem columns)::

    python examples/poetry_generation.py --model_name gpt2-base-ch --learning_rate 1e-4 \\
        --train_file tang.jsonl --validation_file tang_dev.jsonl --title_column title \\
        --form_column form --target_column text --num_train_epochs 3 --output_dir outputs/poetry-gpt2
    python examples/poetry_generation.py --model_name gpt2-base-en --model_dir ./checkpoints ...

Scale out: ``accelerate launch --config_file trainers/configs/ddp.yaml examples/poetry_generation.py ...``
(``fsdp2.yaml``, ``deepspeed_zero3.yaml`` likewise), or ``--deepspeed trainers/configs/ds_zero2.json``
with ``torchrun``; ``--bf16``, ``--gradient_checkpointing``, ``--push_to_hub --hub_model_id
you/poetry`` are the ``Seq2SeqTrainingArguments`` flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common import (
    DataArguments,
    ModelArguments,
    fine_tune,
    first_rows,
    load_split,
    model_name_field,
    parse_arguments,
    sample_file,
)
from transformers import Seq2SeqTrainingArguments

from tasks import get_task

DEFAULTS = dict(
    output_dir="outputs/poetry-generation",
    learning_rate=5e-3,
    num_train_epochs=40,
    per_device_train_batch_size=8,
    logging_steps=5,
    save_strategy="no",
    generation_max_length=40,
    generation_num_beams=1,
    seed=0,
)
PROMPT_SEPARATOR = "："  # FlagAI's "title：form"


@dataclass
class PoetryModelArguments(ModelArguments):
    model_name: str = model_name_field("tiny-gpt2")


@dataclass
class PoetryDataArguments(DataArguments):
    train_file: str | None = sample_file("poetry_train.jsonl")
    validation_file: str | None = sample_file("poetry_dev.jsonl")
    title_column: str = field(default="title", metadata={"help": "column of the title"})
    form_column: str = field(default="form", metadata={"help": "column of the form ('' for none)"})
    target_column: str = field(default="poem", metadata={"help": "column of the poem"})
    max_target_length: int = field(default=64, metadata={"help": "tokens per poem; longer ones are cut"})


def prompt(title: str, form: str | None = None) -> str:
    return f"{title}{PROMPT_SEPARATOR}{form}" if form else title


def main(argv=None):
    model_args, data_args, training_args = parse_arguments(
        [PoetryModelArguments, PoetryDataArguments, Seq2SeqTrainingArguments], DEFAULTS, argv
    )
    columns = {"title": data_args.title_column, "target": data_args.target_column}
    if data_args.form_column:
        columns["form"] = data_args.form_column
    splits = [load_split(data_args, split, columns) for split in ("train", "validation")]
    for records in filter(None, splits):
        records.dataset = records.dataset.map(lambda row: {"source": prompt(row["title"], row.get("form"))})
    train, validation = splits
    shown = first_rows(validation or train, data_args.num_predictions)
    return fine_tune(
        get_task("poetry-generation"),
        model_args,
        data_args,
        training_args,
        train,
        validation,
        tokenizer_fields=("source", "target"),
        predict_inputs=shown["source"] if shown is not None else None,
        references=shown["target"] if shown is not None else None,
        max_target_length=data_args.max_target_length,
    )


if __name__ == "__main__":
    main()
