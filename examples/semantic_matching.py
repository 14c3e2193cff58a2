"""Semantic matching: fine-tune a sentence-pair classifier (do two sentences mean the same?), evaluate, predict.

The ``semantic-matching`` task: records ``{text, text_pair, label}`` (labels are names: ``0`` / ``1``
or any strings; the label set comes from the training file). ``trainers.run_task`` trains with the
``Trainer``, evaluates accuracy and macro F1, predicts a label and its probability for the first
validation pairs and writes the model, tokenizer, ``all_results.json``, a model card (``README.md``)
and ``loss_curve.png`` to ``--output_dir``.

On a CPU, offline, in about 25 s (the default)::

    python examples/semantic_matching.py --output_dir outputs/matching
    python examples/semantic_matching.py examples/configs/semantic_matching.yaml   # the same run as YAML

The default model ``tiny-bert`` is a 0.1M-parameter BERT trained FROM SCRATCH on the 32 sample pairs
of ``examples/data/matching_train.tsv`` (written for this project) with a WordPiece tokenizer
trained on them: it only shows the pipeline end to end (8 validation pairs measure little).

With a real model and your data (a tsv / csv with a header row, or json / jsonl)::

    python examples/semantic_matching.py --model_name bert-base-en --learning_rate 3e-5 \\
        --train_file train.tsv --validation_file dev.tsv --text_column sentence1 \\
        --text_pair_column sentence2 --label_column label --num_train_epochs 3 --output_dir outputs/match
    python examples/semantic_matching.py --model_name all-minilm-l6-v2 --model_dir ./checkpoints ...
    python examples/semantic_matching.py --model_name roberta-base-ch --dataset_name paws-x \\
        --dataset_config_name zh --text_column sentence1 --text_pair_column sentence2 ...

Scale out: ``accelerate launch --config_file trainers/configs/ddp.yaml examples/semantic_matching.py ...``
(``fsdp2.yaml``, ``deepspeed_zero3.yaml`` likewise), or ``--deepspeed trainers/configs/ds_zero2.json``
with ``torchrun``; ``--bf16``, ``--gradient_checkpointing``, ``--push_to_hub --hub_model_id
you/matching`` are the ``TrainingArguments`` flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common import (
    DataArguments,
    ModelArguments,
    check_labels,
    fine_tune,
    first_rows,
    load_split,
    model_name_field,
    parse_arguments,
    sample_file,
)
from transformers import TrainingArguments

from tasks import get_task

DEFAULTS = dict(
    output_dir="outputs/semantic-matching",
    learning_rate=3e-3,
    num_train_epochs=20,
    per_device_train_batch_size=8,
    logging_steps=5,
    save_strategy="no",
    seed=0,
)


@dataclass
class MatchingModelArguments(ModelArguments):
    model_name: str = model_name_field("tiny-bert")


@dataclass
class MatchingDataArguments(DataArguments):
    train_file: str | None = sample_file("matching_train.tsv")
    validation_file: str | None = sample_file("matching_dev.tsv")
    text_column: str = field(default="text", metadata={"help": "column of the first sentence"})
    text_pair_column: str = field(default="text_pair", metadata={"help": "column of the second sentence"})
    label_column: str = field(default="label", metadata={"help": "column of the label"})


def main(argv=None):
    model_args, data_args, training_args = parse_arguments(
        [MatchingModelArguments, MatchingDataArguments, TrainingArguments], DEFAULTS, argv
    )
    columns = {
        "text": data_args.text_column,
        "text_pair": data_args.text_pair_column,
        "label": data_args.label_column,
    }
    train = load_split(data_args, "train", columns)
    validation = load_split(data_args, "validation", columns)
    labels = sorted({str(label) for label in train.dataset["label"]})
    if validation is not None:
        check_labels(validation, "label", labels, valid_from=train.source)
    shown = first_rows(validation or train, data_args.num_predictions)
    pairs = list(zip(shown["text"], shown["text_pair"])) if shown is not None else None
    return fine_tune(
        get_task("semantic-matching"),
        model_args,
        data_args,
        training_args,
        train,
        validation,
        tokenizer_fields=("text", "text_pair"),
        labels=labels,
        predict_inputs=pairs,
        references=[str(label) for label in shown["label"]] if shown is not None else None,
        show=lambda p: f"{p['label']} (p={p['score']:.2f})",
    )


if __name__ == "__main__":
    main()
