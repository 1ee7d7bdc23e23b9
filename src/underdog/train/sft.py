"""Supervised LoRA training on TRL's `SFTTrainer`: the student, its LoRA, and the trainer over prompt-completion rows.

    model, tokenizer = load_student(model_path, cfg, device)
    trainer, counts = sft_trainer(model, tokenizer, splits, cfg, device, output_dir, callbacks, max_length)

TRL renders each row with the student's chat template, masks everything but the completion (`completion_only_loss`),
truncates to `max_input_length`, and batches by the run's `packing`: `group` (the Trainer's length-grouped
sampler, batches padded to their longest), `off` (random batches, padded), `flatten` (TRL's padding-free packing:
best-fit-decreasing bins of `max_input_length` tokens, `position_ids` restarting at each example, so no example
attends to another). Every other part of a run (the store, the overfit check, keep-best, resume) is the recipe's
(`lora.py`) and its callbacks'.
"""

from __future__ import annotations

from typing import Any

from underdog.config import TrainConfig
from underdog.errors import UnderdogError
from underdog.train.arguments import batching, schedule, trainer_arguments
from underdog.train.data import CountingCollator, Splits, quiet_preparation
from underdog.train.devices import attention, pin_one_device, precision, torch_dtype


def load_student(model_path: str, cfg: TrainConfig, device: str) -> tuple[Any, Any]:
    """The student (bf16 from sm80, fp16 on older GPUs, fp32 on CPU: `precision`) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.padding_side = "right"  # left padding would shift the positions of padded training rows
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch_dtype(precision(device, cfg.precision))
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, attn_implementation=attention(device))
    # Without a KV cache, transformers reads restarting position_ids as packed sequences and builds a
    # block-diagonal mask; with one (the config default) packed examples would attend to each other.
    model.config.use_cache = False
    return model, tokenizer


def lora_config(cfg: TrainConfig) -> Any:
    """The run's LoRA (rank, scale, dropout, target modules) for PEFT."""
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.target_modules, task_type="CAUSAL_LM")


def sft_arguments(cfg: TrainConfig, device: str, output_dir: Any, has_eval: bool, max_length: int) -> Any:
    """SFTConfig: completion-only loss on prompt-completion rows, truncation, and the run's batching."""
    from trl import SFTConfig

    packed = batching(cfg, device) == "flatten"
    return trainer_arguments(SFTConfig, cfg, device, output_dir, has_eval=has_eval, max_length=max_length,
                             completion_only_loss=True, packing=packed, packing_strategy="bfd")


def sft_trainer(model: Any, tokenizer: Any, splits: Splits, cfg: TrainConfig, device: str, output_dir: Any,
                callbacks: list[Any], max_length: int) -> tuple[Any, dict[str, int]]:
    """An SFTTrainer wrapping `model` with the run's LoRA, and the rows it trains on: `{"train_examples",
    "eval_examples", "dropped_examples"}` (rows with no completion token left after truncation are dropped)."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTTrainer

    args = sft_arguments(cfg, device, output_dir, bool(splits.eval), max_length)
    pin_one_device(args, device)  # no nn.DataParallel over the other GPUs; `device: cuda:1` means GPU 1
    with quiet_preparation():
        trainer = SFTTrainer(model=model, args=args, processing_class=tokenizer, peft_config=lora_config(cfg),
                             train_dataset=Dataset.from_list(splits.train),
                             eval_dataset=Dataset.from_list(splits.eval) if splits.eval else None,
                             callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # losses show in our progress bar and go to the store
    counts = _counts(trainer, splits, args.packing)
    if not counts["train_examples"]:
        raise UnderdogError("no example with an assistant reply left to train on (after truncation to "
                            f"{max_length} tokens)")
    schedule(trainer.args, cfg, len(trainer.train_dataset), has_eval=bool(splits.eval))
    trainer.data_collator = CountingCollator(trainer.data_collator, active=lambda: trainer.model.training)
    return trainer, counts


def _counts(trainer: Any, splits: Splits, packed: bool) -> dict[str, int]:
    """Rows trained and evaluated; packing truncates rows and drops none, padded batching drops the rows whose
    completion truncation removed."""
    train = len(splits.train) if packed else len(trainer.train_dataset)
    evals = len(splits.eval) if packed or not splits.eval else len(trainer.eval_dataset)
    lost = len(splits.train) + len(splits.eval) - train - evals
    return {"train_examples": train, "eval_examples": evals, "dropped_examples": splits.dropped + lost}
