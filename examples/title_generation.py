"""Title generation: fine-tune a seq2seq model on (text -> title) pairs, evaluate ROUGE, generate titles.

The ``title-generation`` task (``tasks.get_task("title-generation")``): records ``{source, target}``;
T5 learns it as an encoder-decoder, BERT / RoBERTa as UniLM (``BertForSeq2Seq``), GPT-2 / Llama as a
prefix LM, GLM by blank infilling. ``trainers.run_task`` trains with the ``Seq2SeqTrainer``, evaluates
ROUGE-1/2/L on generated titles, generates titles for the first validation rows and writes the model,
tokenizer, ``all_results.json``, a model card (``README.md``) and ``loss_curve.png`` to ``--output_dir``.

On a CPU, offline, in about 25 s (the default)::

    python examples/title_generation.py --output_dir outputs/title
    python examples/title_generation.py examples/configs/title_generation.yaml   # the same run as YAML

The default model ``tiny-bert`` is a 0.14M-parameter BERT seq2seq head (UniLM) trained FROM SCRATCH
on the 40 sample pairs of ``examples/data/title_train.jsonl`` (English and Chinese, written for this
project) with a WordPiece tokenizer trained on them: it only shows the pipeline end to end (it
mostly repeats titles it has seen). ``--model_name tiny-t5`` trains a tiny T5 instead.

With a real model (weights from the catalog, a local directory or the Hub) and your data::

    python examples/title_generation.py --model_name t5-base-en --learning_rate 3e-4 \\
        --train_file train.jsonl --validation_file dev.jsonl --source_column text --target_column title \\
        --num_train_epochs 3 --output_dir outputs/title-t5
    python examples/title_generation.py --model_name t5-base-ch --model_dir ./checkpoints ...  # local copy
    python examples/title_generation.py --model_name bert-base-en ...   # UniLM on a real BERT
    python examples/title_generation.py --model_name bart-base ...      # BART; gemma-3-270m as a prefix LM

Scale out: ``accelerate launch --config_file trainers/configs/ddp.yaml examples/title_generation.py ...``
(``fsdp2.yaml``, ``deepspeed_zero3.yaml`` likewise), or ``--deepspeed trainers/configs/ds_zero2.json``
(``ds_zero3.json``) with ``torchrun``; ``--bf16``, ``--gradient_checkpointing``, ``--push_to_hub
--hub_model_id you/title-model`` are the ``Seq2SeqTrainingArguments`` flags.
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

TASK = "title-generation"
DEFAULTS = dict(
    output_dir="outputs/title-generation",
    learning_rate=1e-2,
    num_train_epochs=20,
    per_device_train_batch_size=8,
    per_device_eval_batch_size=8,
    logging_steps=5,
    save_strategy="no",
    predict_with_generate=True,
    generation_max_length=24,
    generation_num_beams=1,
    seed=0,
)


@dataclass
class TitleModelArguments(ModelArguments):
    model_name: str = model_name_field("tiny-bert")


@dataclass
class TitleDataArguments(DataArguments):
    train_file: str | None = sample_file("title_train.jsonl")
    validation_file: str | None = sample_file("title_dev.jsonl")
    source_column: str = field(default="source", metadata={"help": "column of the text"})
    target_column: str = field(default="target", metadata={"help": "column of the title"})
    max_target_length: int = field(default=32, metadata={"help": "tokens per title; longer ones are cut"})


def main(argv=None):
    model_args, data_args, training_args = parse_arguments(
        [TitleModelArguments, TitleDataArguments, Seq2SeqTrainingArguments], DEFAULTS, argv
    )
    columns = {"source": data_args.source_column, "target": data_args.target_column}
    train = load_split(data_args, "train", columns)
    validation = load_split(data_args, "validation", columns)
    shown = first_rows(validation or train, data_args.num_predictions)
    return fine_tune(
        get_task(TASK),
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
