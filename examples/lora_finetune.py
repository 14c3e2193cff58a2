"""LoRA: fine-tune a Llama-family model on instruction -> response pairs with a PEFT adapter, then merge it.

The ``seq2seq`` task on a decoder (a prefix LM: ``instruction <eos> response <eos>``, the loss covers
the response only). ``trainers.lora.lora_config`` puts LoRA on the zoo Llama's fused attention
projections ``attn.qkv`` and ``attn.out`` (``--lora_mlp`` adds ``mlp.gate/up/down``); everything else
is frozen. ``trainers.run_task`` trains with the ``Seq2SeqTrainer``, evaluates ROUGE of generated
responses, answers the first validation instructions and writes the ADAPTER (``adapter_config.json``,
``adapter_model.safetensors``), the tokenizer, ``all_results.json``, a model card (``README.md``) and
``loss_curve.png`` to ``--output_dir``. Then ``merge_and_unload()`` folds the adapter into the weights
and the plain model is saved to ``<output_dir>/merged`` (it answers exactly as base + adapter).

On a CPU, offline, in about 20 s (the default)::

    python examples/lora_finetune.py --output_dir outputs/lora
    python examples/lora_finetune.py examples/configs/lora_finetune.yaml   # the same run as YAML

The default ``tiny-llama`` is a 0.12M-parameter Llama with RANDOM weights (saved to
``<output_dir>/base-model`` so the adapter reloads) and a BPE tokenizer trained on the 24 sample pairs
of ``examples/data/instructions_train.jsonl`` (written for this project). Its output layer ``lm_head``
trains in full beside the LoRA layers (``--lora_modules_to_save``): randomly initialised output
weights are too small for LoRA alone to move the output. It only shows the pipeline. The adapter names
transformers' modules (``q_proj``, ``k_proj``, ...; the zoo's fused ``attn.qkv`` is split exactly), so
``peft.PeftModel.from_pretrained(transformers.LlamaForCausalLM.from_pretrained(base), "outputs/lora")``
loads it without zoo; on the zoo model, ``zoo.load_adapter`` or ``trainers.lora.load_adapter``.

With a real model (catalog: smollm2-135m, qwen2.5-0.5b, tinyllama-1.1b; a local directory; a Hub id)::

    python examples/lora_finetune.py --model_name smollm2-135m --learning_rate 2e-4 --lora_r 16 \\
        --train_file train.jsonl --validation_file dev.jsonl --source_column prompt \\
        --target_column answer --num_train_epochs 2 --bf16 --output_dir outputs/lora-smollm2
    python examples/lora_finetune.py --model_name qwen2.5-0.5b --model_dir ./checkpoints ...

Scale out: ``accelerate launch --config_file trainers/configs/ddp.yaml examples/lora_finetune.py ...``
(``fsdp2.yaml``, ``deepspeed_zero3.yaml`` likewise), or ``--deepspeed trainers/configs/ds_zero2.json``
with ``torchrun``; ``--gradient_checkpointing``, ``--push_to_hub --hub_model_id you/lora`` (pushes the
adapter) are the ``Seq2SeqTrainingArguments`` flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common import (
    DataArguments,
    ModelArguments,
    fine_tune,
    first_rows,
    load_model,
    load_split,
    model_name_field,
    parse_arguments,
    sample_file,
    texts_of,
)
from transformers import Seq2SeqTrainingArguments, set_seed

from tasks import get_task
from trainers.lora import apply_lora

DEFAULTS = dict(
    output_dir="outputs/lora",
    learning_rate=1e-2,
    num_train_epochs=20,
    per_device_train_batch_size=8,
    logging_steps=5,
    save_strategy="no",
    generation_max_length=16,
    generation_num_beams=1,
    seed=0,
)
BASE_DIR, MERGED_DIR = "base-model", "merged"


@dataclass
class LoraModelArguments(ModelArguments):
    model_name: str = model_name_field("tiny-llama")
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = alpha / r)"})
    lora_dropout: float = field(default=0.0, metadata={"help": "dropout on the LoRA input"})
    lora_mlp: bool = field(default=False, metadata={"help": "LoRA on the MLP projections as well"})
    lora_modules_to_save: list[str] | None = field(
        default=None,
        metadata={
            "help": "layers trained in full and saved with the adapter (default: lm_head for a tiny model)"
        },
    )


@dataclass
class LoraDataArguments(DataArguments):
    train_file: str | None = sample_file("instructions_train.jsonl")
    validation_file: str | None = sample_file("instructions_dev.jsonl")
    source_column: str = field(default="instruction", metadata={"help": "column of the instruction"})
    target_column: str = field(default="response", metadata={"help": "column of the response"})
    max_target_length: int = field(default=32, metadata={"help": "tokens per response; longer ones are cut"})


def main(argv=None):
    model_args, data_args, training_args = parse_arguments(
        [LoraModelArguments, LoraDataArguments, Seq2SeqTrainingArguments], DEFAULTS, argv
    )
    task = get_task("seq2seq")
    set_seed(training_args.seed)
    columns = {"source": data_args.source_column, "target": data_args.target_column}
    train = load_split(data_args, "train", columns)
    validation = load_split(data_args, "validation", columns)
    texts = texts_of(train, ("source", "target"))
    model, tokenizer = load_model(task, model_args, texts, checkpoint=training_args.resume_from_checkpoint)
    output_dir = Path(training_args.output_dir)
    if model_args.is_tiny and training_args.should_save:  # the adapter needs its base model on disk
        model.save_pretrained(output_dir / BASE_DIR)
        tokenizer.save_pretrained(output_dir / BASE_DIR)
        model.name_or_path = str(output_dir / BASE_DIR)  # recorded in adapter_config.json
    modules_to_save = model_args.lora_modules_to_save
    if modules_to_save is None and model_args.is_tiny:  # a random lm_head is too small for LoRA to move
        modules_to_save = ["lm_head"]
    peft_model = apply_lora(
        model, r=model_args.lora_r, alpha=model_args.lora_alpha, dropout=model_args.lora_dropout,
        mlp=model_args.lora_mlp, modules_to_save=modules_to_save,
    )  # fmt: skip
    trainable, total = peft_model.get_nb_trainable_parameters()
    print(f"LoRA on {sorted(peft_model.peft_config['default'].target_modules)}: {trainable:,} of {total:,} "
          f"parameters train ({trainable / total:.1%})")  # fmt: skip
    shown = first_rows(validation or train, data_args.num_predictions)
    result = fine_tune(
        task,
        model_args,
        data_args,
        training_args,
        train,
        validation,
        tokenizer_fields=("source", "target"),
        predict_inputs=shown["source"] if shown is not None else None,
        references=shown["target"] if shown is not None else None,
        max_target_length=data_args.max_target_length,
        model=peft_model,
        tokenizer=tokenizer,
    )
    merged = result.trainer.model.merge_and_unload()
    if training_args.should_save:
        merged.save_pretrained(output_dir / MERGED_DIR)
        tokenizer.save_pretrained(output_dir / MERGED_DIR)
    if shown is not None and training_args.should_log:
        answers = task.predictor(merged, tokenizer).predict(list(shown["source"]))
        same = answers == result.predictions
        print(f"\nmerged model ({output_dir / MERGED_DIR}) answers as base + adapter: {same}")
    return result


if __name__ == "__main__":
    main()
