"""``zoo``: the command line of the model zoo.

Subcommands (each has ``--help``)::

    zoo list [--json]                                   the families, the catalog and the tasks
    zoo info NAME|DIR [--json]                          one catalog entry, or a local model directory
    zoo convert SRC DST --to transformers|zoo           rewrite a checkpoint in the other layout
                [--overwrite]                           (into a DST that holds files already)
    zoo predict TASK MODEL TEXT... [--model_dir D] [--labels a,b] [--json] [--batch_size N]
    zoo train TASK [--crf] [example flags ...]          run the task's example script (examples/*.py)
    zoo push DIR REPO_ID [--token T] [--private] [--reference-layout] [--revision R] [--message M]

``zoo predict semantic-matching`` takes each pair as one argument ``"A|||B"``.

Exit codes (scripts can rely on them):

* 0 — success;
* 1 — a known failure (a ``zoo.errors.ZooError``: unknown name, missing checkpoint, failed upload, ...),
  printed as one line ``zoo: error: <message>`` on stderr, without a traceback;
* 2 — a usage error (unknown subcommand or flag, missing argument), reported by argparse;
* ``zoo train`` returns the example script's own exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from zoo.errors import CheckpointNotFoundError, ZooError

PAIR_SEPARATOR = "|||"
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
# task -> (example script, extra flags)
TRAIN_SCRIPTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "title-generation": ("title_generation.py", ()),
    "poetry-generation": ("poetry_generation.py", ()),
    "ner": ("ner.py", ()),
    "ner-crf": ("ner.py", ("--crf",)),
    "semantic-matching": ("semantic_matching.py", ()),
    "lm": ("language_modeling.py", ()),
}

EPILOG = """\
exit codes: 0 success; 1 a known failure (printed as one line 'zoo: error: <message>' on stderr);
2 a usage error (bad subcommand, flag or argument); 'zoo train' returns the example script's exit code.
Run 'zoo COMMAND --help' for the flags of one command."""


class CliError(ZooError):
    """A failure of the command line itself (e.g. a task without an example script)."""


class UsageError(CliError):
    """A command line the command cannot run (a flag the example script does not take): exit code 2, as
    for argparse's own usage errors."""


# ----------------------------------------------------------------------------------------------- output


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays / scalars, tensors
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _plain(value: Any) -> str:
    value = _jsonable(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"label", "score"}:
        return f"{value['label']}\t{value['score']:.4f}"
    return json.dumps(value, ensure_ascii=False)


def _one_line(message: str) -> str:
    """A multi-line message (e.g. a weight mismatch) as one line: lines joined by '; ', a heading that ends
    with ':' by a space."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return "".join(line + (" " if line.endswith(":") else "; ") for line in lines[:-1]) + "".join(lines[-1:])


def _stdout_to_stderr():
    """While models load, whatever libraries print (e.g. deepspeed's accelerator notice, which a
    transformers import can trigger) goes to stderr, so stdout holds only the command's result."""
    return contextlib.redirect_stdout(sys.stderr)


# ---------------------------------------------------------------------------------------------- commands


def cmd_list(args: argparse.Namespace) -> int:
    from auto_loader import CATALOG
    from tasks import get_task, task_names
    from zoo.family import families as zoo_families
    from zoo.family import supported_heads

    models = [
        {
            "name": e.name,
            "family": e.family,
            "parameters": e.parameters,
            "hub_id": e.hub_id,
            "license": e.license,
            "languages": list(e.languages),
            "heads": list(e.supported_heads()),
        }
        for e in CATALOG.values()
    ]
    tasks = [{"name": n, "task": get_task(n).name, "head": get_task(n).head} for n in task_names()]
    families = [
        {
            "name": f.name,
            "kind": f.kind,
            "reads": list(f.transformers_model_types),
            "heads": list(supported_heads(f.name)),
        }
        for f in zoo_families().values()
    ]
    if args.json:
        print(
            json.dumps({"models": models, "tasks": tasks, "families": families}, indent=2, ensure_ascii=False)
        )
        return 0
    print("Families")
    print(_table(["name", "kind", "reads (transformers model_type)", "heads"],
                 [[f["name"], f["kind"], ", ".join(f["reads"]) or "-", ", ".join(f["heads"])] for f in families]))  # fmt: skip
    print("\nModels")
    print(_table(["name", "family", "parameters", "hub id", "license"],
                 [[m["name"], m["family"], m["parameters"], m["hub_id"], m["license"]] for m in models]))  # fmt: skip
    print("\nTasks")
    rows = [[t["name"], t["head"], "" if t["task"] == t["name"] else f"alias of {t['task']}"] for t in tasks]
    print(_table(["name", "head", "note"], rows))
    return 0


def _directory_info(directory: Path) -> dict[str, Any]:
    import torch

    from auto_loader.loader import family_of_directory
    from tasks.heads import supported_heads
    from zoo.loading import read_config_dict
    from zoo.registry import zoo_class_for

    if not (directory / "config.json").is_file():
        raise CliError(f"{directory} is a directory but holds no config.json (not a model directory)")
    family = family_of_directory(directory)
    config_dict = read_config_dict(directory)
    model_class = zoo_class_for(config_dict, source=str(directory / "config.json"))
    config = model_class.config_class.from_pretrained(directory)
    with torch.device("meta"):  # shapes only, no memory, no weights read
        model = model_class(config)
    return {
        "directory": str(directory),
        "family": family,
        "model_class": model_class.__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "heads": list(supported_heads(family)),
        "files": sorted(p.name for p in directory.iterdir() if p.is_file()),
    }


def _card_head(path: Path, lines: int = 20) -> list[str]:
    if not path.is_file():
        return []
    return path.read_text(encoding="utf-8").splitlines()[:lines]


def cmd_info(args: argparse.Namespace) -> int:
    from auto_loader import get_entry
    from auto_loader.cards import tasks_for

    path = Path(args.name).expanduser()
    if not path.is_dir() and _is_path(args.name):
        if path.exists():
            raise CliError(f"{args.name} is a file, not a model directory")
        raise CheckpointNotFoundError(f"no such directory: {args.name}")
    if path.is_dir():
        with _stdout_to_stderr():
            info = _directory_info(path)
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            print(f"directory:   {info['directory']}")
            print(f"family:      {info['family']} ({info['model_class']})")
            print(f"parameters:  {info['parameters']:,}")
            print(f"heads:       {', '.join(info['heads'])}")
            print(f"files:       {', '.join(info['files'])}")
        return 0
    entry = get_entry(args.name)  # UnknownNameError lists the catalog and close matches
    info = {
        "name": entry.name,
        "family": entry.family,
        "parameters": entry.parameters,
        "hub_id": entry.hub_id,
        "license": entry.license,
        "languages": list(entry.languages),
        "heads": list(entry.supported_heads()),
        "tasks": tasks_for(entry),
        "description": entry.description,
        "card": str(entry.card_path),
    }
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    for key in ("name", "family", "parameters", "hub_id", "license"):
        print(f"{key.replace('_', ' ') + ':':<13}{info[key]}")
    for key in ("languages", "heads", "tasks"):
        print(f"{key + ':':<13}{', '.join(info[key])}")
    print(f"{'description:':<13}{entry.description}")
    card = _card_head(entry.card_path)
    print(f"{'card:':<13}{entry.card_path}" + ("" if card else " (missing)"))
    for line in card:
        print(f"    {line}")
    return 0


def _is_path(name: str) -> bool:
    """Whether ``name`` can only be a path: catalog names hold no separator and start with a letter."""
    return any(sep and sep in name for sep in (os.sep, os.altsep)) or name.startswith((".", "~"))


def cmd_convert(args: argparse.Namespace) -> int:
    from zoo import convert_checkpoint

    destination = Path(args.dst).expanduser()
    if destination.is_file():
        raise CliError(f"{args.dst} is a file; the destination is a directory")
    if destination.is_dir() and any(destination.iterdir()) and not args.overwrite:
        raise CliError(f"{args.dst} exists and is not empty; pass --overwrite to write into it")
    with _stdout_to_stderr():
        result = convert_checkpoint(args.src, args.dst, target=args.to)
    print(f"wrote {args.to} layout to {result if result is not None else args.dst}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from auto_loader import AutoLoader
    from tasks import get_task

    task = get_task(args.task)
    overrides: dict[str, Any] = {}
    if args.labels:
        overrides["labels"] = [label.strip() for label in args.labels.split(",") if label.strip()]
    inputs: list[Any] = list(args.text)
    if task.name == "semantic-matching":
        bad = [text for text in inputs if PAIR_SEPARATOR not in text]
        if bad:
            raise CliError(f"semantic-matching takes pairs written 'A{PAIR_SEPARATOR}B'; got {bad[0]!r}")
        inputs = [tuple(text.split(PAIR_SEPARATOR, 1)) for text in inputs]
    with _stdout_to_stderr():
        loader = AutoLoader(task.name, args.model, model_dir=args.model_dir, **overrides)
        predictions = loader.get_predictor().predict(inputs, batch_size=args.batch_size)
    for text, prediction in zip(args.text, predictions):
        if args.json:
            print(json.dumps({"input": text, "prediction": _jsonable(prediction)}, ensure_ascii=False))
        else:
            print(_plain(prediction))
    return 0


def cmd_train(args: argparse.Namespace, rest: list[str]) -> int:
    if args.task not in TRAIN_SCRIPTS:
        raise CliError(
            f"no training example for task {args.task!r}; supported: {', '.join(TRAIN_SCRIPTS)} "
            "(other tasks: trainers.run_task / build_trainer from Python)"
        )
    script, extra = TRAIN_SCRIPTS[args.task]
    path = EXAMPLES_DIR / script
    if not path.is_file():
        raise CliError(
            f"example script {path} not found: the examples come with the source tree "
            "(git clone the repository and run 'zoo train' from its editable install)"
        )
    unknown = _unknown_flags(rest, _script_flags(path))
    if unknown:
        raise UsageError(
            "; ".join(f"'zoo train {args.task}' has no flag {flag}{hint}" for flag, hint in unknown)
        )
    command = [sys.executable, str(path), *extra, *rest]
    return subprocess.run(command).returncode


def _script_flags(script: Path) -> dict[str, str]:
    """Every flag an example script parses, to its first spelling (``--max-steps``: ``--max_steps``). The
    script's ``HfArgumentParser`` is built from argument dataclasses its namespace holds."""
    from transformers import HfArgumentParser

    name = f"_zoo_example_{script.stem}"
    spec = importlib.util.spec_from_file_location(name, script)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(script.parent))  # the scripts import their shared module as ``common``
    sys.modules[name] = module  # dataclasses and HfArgumentParser resolve annotations through it
    try:
        spec.loader.exec_module(module)
        types = [v for v in vars(module).values() if isinstance(v, type) and dataclasses.is_dataclass(v)]
        return {
            flag: action.option_strings[0]
            for cls in types
            for flag, action in HfArgumentParser(cls)._option_string_actions.items()
        }
    finally:
        sys.path.remove(str(script.parent))
        del sys.modules[name]


def _unknown_flags(argv: Sequence[str], known: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(flag, " (did you mean ...?)" or "")`` for each ``--flag`` of ``argv`` that is no flag of ``known``,
    not even the prefix of one (argparse takes abbreviations)."""
    spellings = sorted(set(known.values()))
    unknown = []
    for arg in argv:
        if arg == "--":
            break
        flag = arg.split("=", 1)[0]
        if flag.startswith("--") and not any(k.startswith(flag) for k in known):
            close = difflib.get_close_matches(flag, spellings, n=3)
            unknown.append((flag, f" (did you mean {' or '.join(close)}?)" if close else ""))
    return unknown


def cmd_push(args: argparse.Namespace) -> int:
    try:
        from trainers.publish import push_to_hub
    except ImportError as error:
        raise CliError(f"zoo push needs trainers.publish, which cannot be imported: {error}") from None

    with _stdout_to_stderr():
        result = push_to_hub(
            args.dir,
            args.repo_id,
            token=args.token,
            revision=args.revision,
            private=args.private,
            reference_layout=args.reference_layout,
            commit_message=args.message,
        )
    url = _commit_url(result)
    print(url if url else "no changes")
    return 0


def _commit_url(result: Any) -> str | None:
    if result is None:
        return None
    if isinstance(result, str):
        return result
    for name in ("commit_url", "url"):
        value = getattr(result, name, None)
        if value:
            return str(value)
    if isinstance(result, dict):
        return result.get("commit_url") or result.get("url")
    return str(result)


# ------------------------------------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo",
        description="The model zoo: list and inspect models, convert checkpoints, predict, train, publish.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", help="the catalog of named models and the tasks", epilog=EPILOG)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="one catalog entry or a local model directory", epilog=EPILOG)
    p.add_argument("name", help="a catalog name (see 'zoo list') or a model directory")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "convert", help="rewrite a checkpoint in the transformers or zoo layout", epilog=EPILOG
    )
    p.add_argument("src", help="checkpoint directory (either layout)")
    p.add_argument("dst", help="output directory")
    p.add_argument("--to", required=True, choices=["transformers", "zoo"], help="layout to write")
    p.add_argument("--overwrite", action="store_true",
                   help="write into DST although it holds files (those of the same names are replaced)")  # fmt: skip
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser(
        "predict",
        help="run a task's predictor on texts",
        description="Predict with AutoLoader(TASK, MODEL).get_predictor(). For semantic-matching give "
        f"each pair as one argument 'A{PAIR_SEPARATOR}B'. One result per line.",
        epilog=EPILOG,
    )
    p.add_argument("task", help="a task name (see 'zoo list')")
    p.add_argument("model", help="a catalog name, a model directory or a Hub id")
    p.add_argument("text", nargs="+", help=f"input texts (pairs as 'A{PAIR_SEPARATOR}B')")
    p.add_argument("--model_dir", "--model-dir", default=None, help="directory holding <MODEL>[-<TASK>]")
    p.add_argument("--labels", default=None, help="label names in id order, comma-separated")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--batch_size", "--batch-size", type=int, default=8)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "train",
        help="fine-tune with the task's example script",
        description="Runs examples/<script>.py for TASK with the remaining flags passed through "
        "(e.g. --model_name, --output_dir, --max_steps, any TrainingArguments flag). Tasks: "
        + ", ".join(f"{t} ({s}{' ' + ' '.join(x) if x else ''})" for t, (s, x) in TRAIN_SCRIPTS.items()),
        epilog=EPILOG,
    )
    p.add_argument("task", help="one of: " + ", ".join(TRAIN_SCRIPTS))
    p.set_defaults(func=cmd_train, passthrough=True)

    p = sub.add_parser("push", help="upload a model directory to the Hub", epilog=EPILOG)
    p.add_argument("dir", help="the model directory to upload")
    p.add_argument("repo_id", help="the Hub repository 'owner/name' (created if missing)")
    p.add_argument("--token", default=None, help="a Hub write token (default: HF_TOKEN or the stored login)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--reference-layout", "--reference_layout", dest="reference_layout", action="store_true",
                   help="upload in the plain transformers layout (loadable without this package)")  # fmt: skip
    p.add_argument("--revision", default=None, help="the branch to commit to")
    p.add_argument("--message", default=None, help="the commit message")
    p.set_defaults(func=cmd_push)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``zoo`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    try:
        if getattr(args, "passthrough", False):
            return args.func(args, rest)
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return args.func(args)
    except UsageError as error:
        parser.error(str(error))
    except ZooError as error:
        print(f"zoo: error: {_one_line(str(error)) or type(error).__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
