"""Named-entity recognition: fine-tune a token classifier on CoNLL data, evaluate entity F1, tag text.

The ``ner`` task (``--crf``: ``ner-crf``, a CRF layer decoded with Viterbi): records ``{tokens, tags}``
with word-level BIO tags; the tag set comes from the training file. ``trainers.run_task`` trains with
the ``Trainer``, evaluates seqeval's entity precision / recall / F1 and token accuracy, then tags the
first validation sentences, printing entities with character offsets, and writes the model,
tokenizer, ``all_results.json``, a model card (``README.md``) and ``loss_curve.png`` to ``--output_dir``.

On a CPU, offline, in about 20 s (the default)::

    python examples/ner.py --output_dir outputs/ner
    python examples/ner.py --crf --output_dir outputs/ner-crf
    python examples/ner.py examples/configs/ner.yaml                 # the same run as YAML

The default model ``tiny-bert`` is a 0.1M-parameter BERT trained FROM SCRATCH on the 48 sentences of
``examples/data/ner_train.conll`` (PER / LOC / ORG, written for this project) with a WordPiece
tokenizer trained on them: it only shows the pipeline end to end.

With a real model and your data (``token TAG`` per line, a blank line between sentences; json /
jsonl files with token and tag lists work too, see ``--tokens_column`` / ``--tags_column``)::

    python examples/ner.py --model_name bert-base-en --learning_rate 5e-5 --num_train_epochs 3 \\
        --train_file train.conll --validation_file dev.conll --output_dir outputs/ner-bert
    python examples/ner.py --model_name all-minilm-l6-v2 --model_dir ./checkpoints ...   # a local copy
    python examples/ner.py --model_name deberta-v3-base ...   # also modernbert-base, xlm-roberta-base
    python examples/ner.py --model_name bert-base-en --dataset_name conll2003 \\
        --tokens_column tokens --tags_column ner_tags ...                                 # a Hub dataset

Scale out: ``accelerate launch --config_file trainers/configs/ddp.yaml examples/ner.py ...``
(``fsdp2.yaml``, ``deepspeed_zero3.yaml`` likewise), or ``--deepspeed trainers/configs/ds_zero2.json``
with ``torchrun``; ``--bf16``, ``--gradient_checkpointing``, ``--push_to_hub --hub_model_id you/ner``
are the ``TrainingArguments`` flags.
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
from tasks.labeling import join_words, tag_names

DEFAULTS = dict(
    output_dir="outputs/ner",
    learning_rate=5e-3,
    num_train_epochs=15,
    per_device_train_batch_size=8,
    logging_steps=5,
    save_strategy="no",
    seed=0,
)


@dataclass
class NerModelArguments(ModelArguments):
    model_name: str = model_name_field("tiny-bert")
    crf: bool = field(default=False, metadata={"help": "a CRF layer over the tag scores (task ner-crf)"})


@dataclass
class NerDataArguments(DataArguments):
    train_file: str | None = sample_file("ner_train.conll")
    validation_file: str | None = sample_file("ner_dev.conll")
    tokens_column: str = field(default="tokens", metadata={"help": "column of the word lists (json / Hub)"})
    tags_column: str = field(default="tags", metadata={"help": "column of the tag lists (json / Hub)"})


def show_entities(entities: list[dict]) -> str:
    """``Ken Ito/PER [0:7] 0.99; Oslo/LOC [17:21] 0.99`` (character offsets into the text)."""
    spans = [f"{e['text']}/{e['entity']} [{e['start']}:{e['end']}] {e['score']:.2f}" for e in entities]
    return "; ".join(spans) or "(no entities)"


def main(argv=None):
    model_args, data_args, training_args = parse_arguments(
        [NerModelArguments, NerDataArguments, TrainingArguments], DEFAULTS, argv
    )
    task = get_task("ner-crf" if model_args.crf else "ner")
    columns = {"tokens": data_args.tokens_column, "tags": data_args.tags_column}
    train = load_split(data_args, "train", columns, conll=True)
    validation = load_split(data_args, "validation", columns, conll=True)
    labels = tag_names(train.dataset["tags"])
    if validation is not None:
        check_labels(validation, "tags", labels, valid_from=train.source)
    shown = first_rows(validation or train, data_args.num_predictions)
    texts = [join_words(tokens)[0] for tokens in shown["tokens"]] if shown is not None else None
    return fine_tune(
        task,
        model_args,
        data_args,
        training_args,
        train,
        validation,
        tokenizer_fields=("tokens",),
        labels=labels,
        predict_inputs=texts,
        references=[" ".join(tags) for tags in shown["tags"]] if shown is not None else None,
        show=show_entities,
    )


if __name__ == "__main__":
    main()
