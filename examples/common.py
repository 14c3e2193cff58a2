"""What the fine-tuning examples share: argument dataclasses, data files read with row checks, the
tiny offline default model, and the printed report.

The scripts import this module as ``common`` (``python examples/<script>.py`` puts ``examples/`` on
``sys.path``). Nothing here trains: training, evaluation, prediction and the files written to
``output_dir`` are ``trainers.run_task``'s.
"""

from __future__ import annotations

import difflib
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import datasets
import yaml
from transformers import HfArgumentParser, PreTrainedTokenizerFast, set_seed

import zoo
from auto_loader import AutoLoader
from tasks import Task, TaskDataError
from tasks.data import parse_conll, read_table
from tasks.heads import head_class
from tasks.packing import packing_collator
from zoo.errors import CheckpointNotFoundError, ConfigError
from zoo.tokenization import has_tokenizer

EXAMPLES_DIR = Path(__file__).resolve().parent
DATA_DIR = EXAMPLES_DIR / "data"
CONFIG_DIR = EXAMPLES_DIR / "configs"
TINY_PREFIX = "tiny-"
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CONTINUING = "##"  # WordPiece's prefix of a piece that continues a word
PRIVATE_USE = 0xF0000  # Supplementary Private Use Area-A: stand-ins for pieces while the vocabulary is learnt


class DataFileError(TaskDataError):
    """A data file does not fit the example: the message names the file, the row and the column."""


# -- arguments ------------------------------------------------------------------------------------
def tiny_families() -> list[str]:
    """The families that declare a tiny config, so ``tiny-<family>`` trains one from scratch."""
    return [name for name, family in zoo.families().items() if family.tiny_config]


def model_name_field(default: str) -> Any:
    return field(
        default=default,
        metadata={
            "help": f"'{TINY_PREFIX}<family>' ({', '.join(tiny_families())}) trains a tiny model from "
            "scratch on the data (offline, to show the pipeline); otherwise a catalog name (bert-base-en, "
            "t5-base-ch, all-minilm-l6-v2, modernbert-base, deberta-v3-base, bart-base, gemma-3-270m, ...), "
            "a local model directory or a Hub id 'owner/name', loaded through auto_loader.AutoLoader"
        },
    )


@dataclass
class ModelArguments:
    model_name: str = model_name_field("tiny-bert")
    model_dir: str | None = field(
        default=None,
        metadata={"help": "directory AutoLoader looks in first: <model_dir>/<model_name>[-<task>]"},
    )
    revision: str | None = field(default=None, metadata={"help": "Hub revision (branch, tag or commit)"})
    init_config: str | None = field(
        default=None,
        metadata={"help": "config JSON of the tiny model (default: the family's declared tiny_config)"},
    )
    vocab_size: int = field(
        default=2000, metadata={"help": "vocabulary size of the tokenizer trained for a tiny model"}
    )

    @property
    def is_tiny(self) -> bool:
        return self.model_name.lower().startswith(TINY_PREFIX)


def sample_file(name: str) -> Any:
    """A data-file field whose default is a sample of ``examples/data``."""
    return field(
        default=str(DATA_DIR / name),
        metadata={"help": f"json / jsonl / csv / tsv (CoNLL for NER) file; default: the sample {name}"},
    )


@dataclass
class DataArguments:
    train_file: str | None = None
    validation_file: str | None = None
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "a Hub dataset read with datasets.load_dataset; replaces train_file/validation_file"
        },
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "the Hub dataset's configuration"}
    )
    train_split: str = field(default="train", metadata={"help": "split of --dataset_name to train on"})
    validation_split: str | None = field(
        default="validation",
        metadata={"help": "split of --dataset_name to evaluate on (none: no evaluation)"},
    )
    max_length: int = field(default=128, metadata={"help": "tokens per input; longer inputs are cut"})
    packing: bool | None = field(
        default=None,
        metadata={
            "help": "pack several records into each row of --max_length tokens, attention confined to each "
            "record (tasks.packing); default: on where exact (ner, lm, masklm), off elsewhere, where asking "
            "for it raises PackingError naming why",
            "nargs": "?",  # a bare --packing means true
            "const": True,
        },
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "use the first N training rows"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "use the first N validation rows"})
    num_predictions: int = field(default=4, metadata={"help": "validation rows to predict and print"})


def parse_arguments(types: Sequence[type], defaults: Mapping[str, Any] | None = None, argv=None) -> tuple:
    """The dataclasses from the command line, or from one YAML / JSON run config.

    ``python script.py run.yaml [--flag value ...]``: the file's keys are the flag names; flags after
    it override the file. ``defaults`` are the script's own defaults (under the file and the flags).
    """
    parser = HfArgumentParser(list(types))
    if defaults:
        parser.set_defaults(**defaults)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].lower().endswith(CONFIG_SUFFIXES) and not argv[0].startswith("-"):
        parser.set_defaults(**read_run_config(argv[0], types))
        argv = argv[1:]
    return parser.parse_args_into_dataclasses(args=argv)


def read_run_config(path: str | Path, types: Sequence[type]) -> dict[str, Any]:
    """A run config file as a dict of flag values; unknown keys raise ``ConfigError`` naming them."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no run config file at {path}")
    text = path.read_text(encoding="utf-8")
    values = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"{path}: a run config is a mapping of flag names to values, not {type(values).__name__}"
        )
    known = {f.name for cls in types for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        hints = [
            f"{key} (did you mean {', '.join(difflib.get_close_matches(key, known, n=2))}?)"
            for key in unknown
        ]
        raise ConfigError(f"{path}: unknown key(s): {'; '.join(hints)}")
    return values


# -- data -----------------------------------------------------------------------------------------
@dataclass
class Records:
    """Rows of one data source in the task's schema, with where each row came from."""

    dataset: datasets.Dataset
    source: str
    columns: dict[str, str]  # schema field -> column name in the source
    row_lines: list[int] | None = None  # first line of each row (CoNLL)

    def where(self, index: int, schema_field: str, token: int | None = None) -> str:
        column = self.columns.get(schema_field, schema_field)
        if self.row_lines is not None:
            line = self.row_lines[index] + (token or 0)
            row = f"sentence {index + 1} (line {line})"
        else:
            row = f"row {index + 1}"
        return f"{self.source}: {row}, column {column!r}"

    def __len__(self) -> int:
        return len(self.dataset)


def _conll_sentence_lines(lines: Sequence[str]) -> list[int]:
    """The 1-based line of each sentence's first token (the sentence rules of ``tasks.data.parse_conll``)."""
    starts, inside = [], False
    for number, raw in enumerate(lines, 1):
        raw = raw.removeprefix("\ufeff") if number == 1 else raw  # a BOM, as parse_conll strips it
        separator = not raw.strip() or raw.startswith("-DOCSTART-")
        if not separator and not inside:
            starts.append(number)
        inside = not separator
    return starts


def _from_hub(data_args: DataArguments, split: str, columns: Mapping[str, str]) -> Records:
    source = f"{data_args.dataset_name}[{split}]"
    dataset = datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name, split=split)
    missing = [column for column in columns.values() if column not in dataset.column_names]
    if missing:
        raise DataFileError(f"{source} has no column(s) {', '.join(missing)}; it has {dataset.column_names}")
    dataset = dataset.select_columns(list(columns.values()))
    for column in columns.values():  # class ids (e.g. conll2003's ner_tags) -> their names
        feature = dataset.features[column]
        inner = getattr(feature, "feature", None)
        if isinstance(feature, datasets.ClassLabel) or isinstance(inner, datasets.ClassLabel):
            names = (inner if isinstance(inner, datasets.ClassLabel) else feature).names

            def to_names(row, column=column, names=names, nested=inner is not None):
                value = row[column]
                return {"_names": [names[int(i)] for i in value] if nested else names[int(value)]}

            dataset = dataset.map(to_names, remove_columns=[column]).rename_column("_names", column)
    dataset = dataset.rename_columns({c: f for f, c in columns.items() if c != f})
    return Records(dataset, source, dict(columns))


def read_records(path: str | Path, columns: Mapping[str, str], conll: bool = False) -> Records:
    """A data file in the schema ``columns`` maps (schema field -> file column).

    json / jsonl / csv / tsv go through ``tasks.data.read_table`` (``datasets``); ``conll=True`` reads
    ``token TAG`` lines (any suffix but .json / .jsonl) into ``{tokens, tags}``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no data file at {path}")
    if conll and path.suffix.lower() not in (".json", ".jsonl"):
        lines = path.read_text(encoding="utf-8").splitlines()
        dataset = datasets.Dataset.from_dict(parse_conll(lines, source=str(path)))
        return Records(dataset, str(path), {"tokens": "token", "tags": "tag"}, _conll_sentence_lines(lines))
    dataset = read_table(path, columns={column: schema for schema, column in columns.items()})
    return Records(dataset, str(path), dict(columns))


def load_split(
    data_args: DataArguments,
    split: str,
    columns: Mapping[str, str],
    conll: bool = False,
    required: Iterable[str] | None = None,
) -> Records | None:
    """The train or validation rows (``split``: "train" / "validation"), checked for empty values."""
    if data_args.dataset_name:
        hub_split = data_args.train_split if split == "train" else data_args.validation_split
        records = _from_hub(data_args, hub_split, columns) if hub_split else None
    else:
        path = data_args.train_file if split == "train" else data_args.validation_file
        records = read_records(path, columns, conll=conll) if path else None
    if records is None:
        return None
    limit = data_args.max_train_samples if split == "train" else data_args.max_eval_samples
    if limit is not None and limit < len(records.dataset):
        records.dataset = records.dataset.select(range(limit))
        if records.row_lines is not None:
            records.row_lines = records.row_lines[:limit]
    if len(records.dataset) == 0:
        raise DataFileError(f"{records.source} holds no rows")
    check_filled(records, list(required) if required is not None else list(columns))
    return records


def read_lines(path: str | Path) -> list[str]:
    """The lines of a text file (through ``datasets``' text reader)."""
    lines = datasets.load_dataset("text", data_files=str(path), split="train")["text"]
    if not any(line.strip() for line in lines):
        raise DataFileError(f"{path} holds no text")
    return lines


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, (list, tuple)):
        return len(value) == 0
    return False


def check_filled(records: Records, schema_fields: Sequence[str]) -> None:
    """Every row has a value in every field; CoNLL rows have one tag per token."""
    for schema_field in schema_fields:
        for index, value in enumerate(records.dataset[schema_field]):
            if _is_empty(value):
                raise DataFileError(f"{records.where(index, schema_field)} is empty; every row needs a value")
    if {"tokens", "tags"} <= set(records.dataset.column_names):
        for index, row in enumerate(records.dataset):
            if len(row["tokens"]) != len(row["tags"]):
                raise DataFileError(
                    f"{records.where(index, 'tags')} has {len(row['tags'])} tags for {len(row['tokens'])} tokens"
                )


def check_labels(records: Records, schema_field: str, valid: Sequence[str], valid_from: str) -> None:
    """Every label (or tag, for list fields) of ``records`` is one of ``valid``."""
    allowed = {str(label) for label in valid}
    for index, value in enumerate(records.dataset[schema_field]):
        items = value if isinstance(value, list) else [value]
        for position, label in enumerate(items):
            if str(label) not in allowed:
                token = position if isinstance(value, list) else None
                raise DataFileError(
                    f"{records.where(index, schema_field, token)}: unknown label {str(label)!r}; the labels "
                    f"of {valid_from} are {', '.join(map(repr, valid))}"
                )


def texts_of(records: Records | None, schema_fields: Sequence[str]) -> list[str]:
    """Every string of the given fields (token lists joined by spaces), for training a tokenizer."""
    if records is None:
        return []
    texts = []
    for schema_field in schema_fields:
        for value in records.dataset[schema_field]:
            texts.append(" ".join(value) if isinstance(value, list) else str(value))
    return texts


# -- the model ------------------------------------------------------------------------------------
def wordpiece_vocab(words: Sequence[str], vocab_size: int) -> dict[str, int]:
    """The vocabulary ``tokenizers``' WordPieceTrainer learns from ``words``, the same in every process.

    That trainer numbers the ``##`` continuation pieces in the order of a Rust hash map, seeded anew in
    every process (so neither PYTHONHASHSEED nor the order of the texts helps), and breaks ties between
    equally frequent merges by those numbers: the same texts gave another vocabulary on every run.
    Here each piece, a word-initial character or a ``##`` one, becomes a private-use character in
    sorted order, so the BPE trainer under WordPiece numbers them by code point; its merges are then
    spelt back as WordPiece tokens.
    """
    from tokenizers import Tokenizer, models, trainers

    inner = sorted({char for word in words for char in word[1:]})
    pieces = [*sorted({char for word in words for char in word}), *(CONTINUING + char for char in inner)]
    code = {piece: chr(PRIVATE_USE + index) for index, piece in enumerate(pieces)}
    piece_of = {c: piece for piece, c in code.items()}
    encoded = [code[word[0]] + "".join(code[CONTINUING + char] for char in word[1:]) for word in words]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=WORDPIECE_SPECIALS,
        initial_alphabet=list(code.values()),  # a plain piece for characters seen only inside words too
        show_progress=False,
    )
    bpe = Tokenizer(models.BPE())
    bpe.train_from_iterator(encoded, trainer)

    def spell(token: str) -> str:
        if token in WORDPIECE_SPECIALS:
            return token
        return piece_of[token[0]] + "".join(piece_of[c].removeprefix(CONTINUING) for c in token[1:])

    return {spell(token): index for token, index in bpe.get_vocab().items()}


def train_wordpiece_tokenizer(texts: Sequence[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer (lower-cased, CJK split per character) trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = [
        word for text in texts for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
    ]
    backend = Tokenizer(models.WordPiece(wordpiece_vocab(words, vocab_size), unk_token="[UNK]"))
    backend.normalizer = normalizer
    backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoders.WordPiece()
    backend.add_special_tokens(WORDPIECE_SPECIALS)
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        eos_token="[SEP]",  # T5's format ends source and target with the end token
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
    tokenizer.model_max_length = 512
    return tokenizer


def train_tokenizer(family: str, texts: Sequence[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """The tokenizer the family's kind is used to (``Family.tokenizer_kind``): WordPiece for encoders and
    encoder-decoders, byte-level BPE (``zoo.train_bpe_tokenizer``) for decoders."""
    if not texts:
        raise DataFileError("no training text to train the tiny model's tokenizer on")
    if zoo.get_family(family).tokenizer_kind == "wordpiece":
        return train_wordpiece_tokenizer(texts, vocab_size)
    tokenizer = zoo.train_bpe_tokenizer(texts, vocab_size=vocab_size, min_frequency=2)
    tokenizer.pad_token = tokenizer.eos_token  # padding is masked out; decoders have no pad token
    return tokenizer


def build_tiny_model(
    task: Task, family: str, tokenizer, init_config: str | None = None, labels: Sequence[str] | None = None
):
    """The task's head on ``family``, randomly initialised from the family's tiny config (or a config JSON)."""
    declaration = zoo.get_family(family)
    special = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
    if declaration.kind == "encoder-decoder":
        special.update(eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id)
    elif declaration.tokenizer_kind == "bpe":
        special.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    label_fields = {
        k: v for k, v in task.label_config(labels).items() if k != "num_labels"
    }  # id2label sets it
    cls = head_class(family, task.head)
    if init_config:
        model = cls.init_from_json(init_config, **special, **label_fields)
    elif declaration.tiny_config:
        model = cls(declaration.config_class(**{**declaration.tiny_config, **special, **label_fields}))
    else:
        raise ConfigError(
            f"family {family!r} declares no tiny config; tiny families: {', '.join(tiny_families())} "
            "(or give --init_config path/to/config.json)"
        )
    if hasattr(model, "tokenizer") and model.tokenizer is None:
        model.tokenizer = tokenizer  # nanoGPT's GPT owns its tokenizer and saves it with the weights
    return model


def saved_tokenizer(checkpoint: str | Path) -> PreTrainedTokenizerFast:
    """The tokenizer a run saved into its checkpoint (the ``Trainer`` writes it into every one)."""
    if not has_tokenizer(checkpoint):
        raise CheckpointNotFoundError(
            f"--resume_from_checkpoint {checkpoint} holds no tokenizer, so it is no checkpoint of this "
            "script; give a checkpoint-N directory of the run to resume"
        )
    return zoo.load_tokenizer(checkpoint)


def load_model(
    task: Task,
    model_args: ModelArguments,
    tokenizer_texts: Sequence[str],
    labels: Sequence[str] | None = None,
    checkpoint: str | None = None,
):
    """``(model, tokenizer)``: a tiny model trained from scratch, or a real one through ``AutoLoader``.

    Resuming from ``checkpoint``, a tiny model takes the tokenizer saved there rather than training one:
    the checkpoint's weights belong to its token ids.
    """
    if model_args.is_tiny:
        family = model_args.model_name[len(TINY_PREFIX) :].lower()
        if checkpoint:
            tokenizer = saved_tokenizer(checkpoint)
            origin = f"from {checkpoint}"
        else:
            tokenizer = train_tokenizer(family, tokenizer_texts, model_args.vocab_size)
            origin = "trained on the training data"
        model = build_tiny_model(task, family, tokenizer, model_args.init_config, labels)
        print(
            f"{model_args.model_name}: {type(model).__name__} with {model.get_num_params():,} parameters, "
            f"trained from scratch; tokenizer of {len(tokenizer)} tokens {origin}"
        )
        return model, tokenizer
    overrides = {"labels": list(labels)} if labels is not None else {}
    if model_args.revision:
        overrides["revision"] = model_args.revision
    loader = AutoLoader(task.name, model_args.model_name, model_dir=model_args.model_dir, **overrides)
    print(f"loaded {loader!r}")
    model = loader.get_model()
    if not Path(model_args.model_name).expanduser().exists():  # the card names the catalog / Hub model
        model.config.name_or_path = model_args.model_name
    return model, loader.get_tokenizer()


# -- the report -----------------------------------------------------------------------------------
def print_metrics(metrics: Mapping[str, Any]) -> None:
    keys = [k for k in sorted(metrics) if not k.endswith(("_runtime", "_per_second"))]
    if not keys:
        return
    width = max(map(len, keys))
    print("\nevaluation:")
    for key in keys:
        value = metrics[key]
        print(f"  {key:<{width}}  {value:.4f}" if isinstance(value, float) else f"  {key:<{width}}  {value}")


def print_predictions(
    inputs: Sequence[Any],
    predictions: Sequence[Any],
    references: Sequence[Any] | None = None,
    show: Callable[[Any], str] = repr,
) -> None:
    if not predictions:
        return
    print("\npredictions:")
    for index, (item, predicted) in enumerate(zip(inputs, predictions)):
        print(f"  input:      {item!r}")
        print(f"  prediction: {show(predicted)}")
        if references is not None:
            print(f"  reference:  {references[index]!r}")


def print_outputs(output_dir: str | Path) -> None:
    files = sorted(p.name for p in Path(output_dir).iterdir() if p.is_file())
    print(f"\nwritten to {output_dir}: {', '.join(files)}")


def first_rows(records: Records | None, count: int) -> datasets.Dataset | None:
    """The first ``count`` rows shown as predictions (None when there is nothing to show)."""
    if records is None or count <= 0:
        return None
    return records.dataset.select(range(min(count, len(records.dataset))))


def fine_tune(
    task: Task,
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args,
    train: Records,
    validation: Records | None,
    tokenizer_fields: Sequence[str],
    labels: Sequence[str] | None = None,
    predict_inputs: Sequence[Any] | None = None,
    references: Sequence[Any] | None = None,
    max_target_length: int | None = None,
    show: Callable[[Any], str] = repr,
    model=None,
    tokenizer=None,
):
    """Load (or build) the model, then ``trainers.run_task``: train or resume, evaluate, predict, save, print."""
    from trainers import run_task

    checkpoint = training_args.resume_from_checkpoint
    if model is None:
        set_seed(training_args.seed)  # the random weights: the Trainer seeds only once the model exists
        model, tokenizer = load_model(task, model_args, texts_of(train, tokenizer_fields), labels, checkpoint)
    if checkpoint:
        print(f"resuming from {checkpoint}")
    packing = data_args.packing if data_args.packing is not None else not task.not_packable
    extra = {}
    if packing:  # PackingError where it would not be exact
        extra["data_collator"] = packing_collator(task, tokenizer, model, data_args.max_length)
        print(
            f"packing records into rows of <= {data_args.max_length} tokens (--packing false: padded batches)"
        )
    result = run_task(
        task,
        model,
        tokenizer,
        training_args,
        train.dataset,
        validation.dataset if validation is not None else None,
        labels=list(labels) if labels is not None else None,
        max_length=data_args.max_length,
        max_target_length=max_target_length,
        resume_from_checkpoint=checkpoint,
        predict_inputs=list(predict_inputs) if predict_inputs else None,
        **extra,
    )
    if training_args.should_log:
        print_metrics(result.eval_metrics)
        print_predictions(predict_inputs or [], result.predictions or [], references, show)
        print_outputs(training_args.output_dir)
    return result
