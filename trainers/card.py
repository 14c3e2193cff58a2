"""What a training run leaves for people who find the model: a model card with its results, and a loss plot."""

from __future__ import annotations

import math
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from zoo.family import get_family

PIPELINE_TAG = {
    "sequence-classification": "text-classification",
    "sequence-labeling": "token-classification",
    "sequence-labeling-crf": "token-classification",
    "seq2seq": "text2text-generation",
    "causal-lm": "text-generation",
    "masked-lm": "fill-mask",
    "embedding": "sentence-similarity",
}
LOSS_CURVE = "loss_curve.png"


def write_loss_curve(log_history: list[dict], path: Path) -> Path | None:
    """Training (and evaluation) loss against the step, as a PNG; None when nothing was logged."""
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    evaluation = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and "step" in e]
    if not train and not evaluation:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for points, label in ((train, "train loss"), (evaluation, "eval loss")):
        if points:
            axes.plot(*zip(*points), marker="." if len(points) < 50 else None, label=label)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _base_model(trainer) -> tuple[str | None, object | None]:
    """The base model's Hub id (and catalog entry) when the run started from a known model."""
    from auto_loader import find_entry

    name = trainer.zoo_base_model
    if not name:
        return None, None
    entry = find_entry(Path(name).name) or find_entry(name)
    if entry is not None:
        return entry.hub_id, entry
    return (name, None) if "/" in name and not Path(name).exists() else (None, None)


def training_card(trainer, dataset_name: str | None = None) -> ModelCard:
    task = trainer.zoo_task
    args = trainer.args
    base_model, entry = _base_model(trainer)
    model_name = Path(args.output_dir).name
    metrics = {
        k.removeprefix("eval_"): v
        for k, v in _last_eval(trainer.state.log_history).items()
        if k.startswith("eval_") and isinstance(v, (int, float)) and math.isfinite(v)
        and k not in ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "eval_epoch")
    }  # fmt: skip
    pipeline_tag = PIPELINE_TAG.get(task.head)
    dataset = dataset_name or "custom"
    eval_results = [
        EvalResult(task_type=pipeline_tag or task.name, dataset_type=dataset, dataset_name=dataset,
                   metric_type=name, metric_value=float(value))
        for name, value in sorted(metrics.items())
    ] or None  # fmt: skip
    family = trainer.model.config.model_type.removeprefix("zoo_")
    layout_lines, library = checkpoint_format(trainer.model)
    data = ModelCardData(
        model_name=model_name,
        license=entry.license if entry is not None else None,
        language=list(entry.languages) if entry is not None else None,
        library_name=library,
        pipeline_tag=pipeline_tag,
        tags=["zoo-models", task.name, family],
        base_model=base_model,
        datasets=[dataset_name] if dataset_name else None,
        eval_results=eval_results,
    )
    hyper = {
        "learning_rate": args.learning_rate,
        "train_batch_size (per device)": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "num_train_epochs": args.num_train_epochs,
        "max_steps": args.max_steps,
        "global steps": trainer.state.global_step,
        "seed": args.seed,
        "lr_scheduler_type": str(args.lr_scheduler_type.value if hasattr(args.lr_scheduler_type, "value") else args.lr_scheduler_type),
        "bf16": args.bf16,
    }  # fmt: skip
    lines = [
        f"# {model_name}",
        "",
        f"`{type(trainer.model).__name__}` fine-tuned for the `{task.name}` task"
        + (f" from [`{base_model}`](https://huggingface.co/{base_model})" if base_model else "")
        + " with the Hugging Face `Trainer` ([zoo-models](https://pypi.org/project/zoo-models/)).",
        "",
        "## Results",
        "",
        *(
            ["| metric | value |", "|---|---|", *(f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items()))]
            if metrics
            else ["No evaluation set was given."]
        ),  # fmt: skip
        "",
        f"![loss curve]({LOSS_CURVE})" if (Path(args.output_dir) / LOSS_CURVE).is_file() else "",
        "",
        "## Training hyper-parameters",
        "",
        "| name | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in hyper.items()),
        "",
        "## Checkpoint format",
        "",
        *layout_lines,
        "",
        "## Use it",
        "",
        "```python",
        "from auto_loader import AutoLoader",
        "",
        f'loader = AutoLoader("{task.name}", model_name="<this repository or directory>")',
        "predictions = loader.get_predictor().predict([...])",
        "```",
        "",
    ]
    if entry is not None:
        family = get_family(entry.family)
        lines += ["## Architecture", "", family.architecture, "",
                  "## Parity evidence", "", f"{family.parity}.", ""]  # fmt: skip
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def checkpoint_format(model) -> tuple[list[str], str]:
    """What the card says about the files ``save_pretrained`` wrote, and the library that loads them."""
    adapter = hasattr(model, "peft_config") and hasattr(model, "get_base_model")
    base = model.get_base_model() if adapter else model
    if not adapter and getattr(base, "saves_sentence_transformers", lambda: False)():
        backbone = base.base_model.transformers_architecture
        return [
            "Saved as a sentence-transformers directory (`modules.json`, its pooling and normalisation) "
            f"with the backbone in the transformers layout as `transformers.{backbone}`: "
            "`sentence_transformers.SentenceTransformer(path)` loads it without zoo-models."
        ], "sentence-transformers"
    architecture = getattr(base, "transformers_architecture", None)
    if architecture is not None:
        what = "The adapter names the modules of" if adapter else "Saved in the transformers layout as"
        line = (
            f"{what} `transformers.{architecture}` (`model_type: {base.config.reference_model_type}`): "
            "plain transformers (and PEFT, vLLM, TGI) load it without zoo-models."
        )
        return [line], "transformers"
    name = type(base).__name__
    return [
        f"Saved in the zoo layout (`model_type: {base.config.model_type}`, `architectures: [Zoo{name}]`): "
        f"`{name}` has no transformers counterpart, so loading it needs `pip install zoo-models` "
        "(`zoo.load(path)` or the `AutoLoader` below)."
    ], "zoo-models"


def _last_eval(log_history: list[dict]) -> dict:
    evaluations = [e for e in log_history if any(k.startswith("eval_") for k in e)]
    merged: dict = {}
    for entry in evaluations[-2:]:  # the loss pass and the generation metrics log separately
        merged.update(entry)
    return merged


def write_training_card(trainer, output_dir: Path, dataset_name: str | None = None) -> Path:
    path = Path(output_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    training_card(trainer, dataset_name).save(path)
    return path
