"""The one place a run's trainer arguments are built: TRL's `SFTConfig` / `DPOConfig` (both TrainingArguments)
from the JumpStart-named hyperparameters of `train:`.

    args = trainer_arguments(SFTConfig, cfg, device, output_dir, has_eval=True, max_length=1024, ...)
    schedule(args, cfg, rows=len(trainer.train_dataset), has_eval=True)   # once the trainer has prepared its rows

Settings every run shares (learning rate, epochs, batch sizes, precision, logging, evaluation and checkpoints,
`report_to`) are set here; each method passes only its own (`max_length`, `completion_only_loss`, `beta`, ...).
TRL's configs default to gradient checkpointing and bf16: both are set from the run's config, never left to them.
"""

from __future__ import annotations

import importlib.util
import math
import os
import warnings
from pathlib import Path
from typing import Any

from underdog.config import TrainConfig
from underdog.errors import ConfigError
from underdog.train.devices import attention, precision

# TRL deprecates `use_liger_kernel` in favour of kernels fetched from the Hugging Face Hub at run time
# (`use_kernels`); underdog trains offline, so it keeps the pip-installed liger-kernel path.
warnings.filterwarnings("ignore", message="`use_liger_kernel=True` is deprecated", category=FutureWarning)
# transformers 5.25 renames `gradient_checkpointing*` to `activation_checkpointing*`; TRL 1.16 reads the old names,
# which work across transformers 5.x.
warnings.filterwarnings("ignore", message="`gradient_checkpointing(_kwargs)?` is deprecated", category=FutureWarning)


def batching(cfg: TrainConfig, device: str) -> str:
    """The effective `packing` mode: `auto` flattens with flash-attn, groups by length otherwise."""
    if cfg.packing != "auto":
        return cfg.packing
    return "flatten" if attention(device) == "flash_attention_2" else "group"


def liger(cfg: TrainConfig, device: str) -> bool:
    """Whether the run uses Liger's kernels (`liger: auto`: with liger-kernel installed and a CUDA GPU)."""
    installed = importlib.util.find_spec("liger_kernel") is not None
    if cfg.liger == "on" and not (installed and device.startswith("cuda")):
        raise ConfigError("train.liger: on needs the liger-kernel package and a CUDA GPU "
                          "(pip install liger-kernel; or liger: auto)")
    return cfg.liger == "on" or (cfg.liger == "auto" and installed and device.startswith("cuda"))


def keeps_best(cfg: TrainConfig, has_eval: bool) -> bool:
    """Whether the run ends with its best-eval-loss adapter (`keep_best`; default: with early stopping).

    Not by default otherwise: eval loss is not answer quality. On the demo's invented facts the eval loss on
    held-out phrasings rose while the run learned the facts; its best-eval-loss adapter stated 2 of 16 facts, the
    last one 14 of 16. Pick runs by judged quality (`underdog judge`, `recommend`) instead."""
    return has_eval and (cfg.early_stopping if cfg.keep_best is None else cfg.keep_best)


def trainer_arguments(config_class: type, cfg: TrainConfig, device: str, output_dir: Path, *, has_eval: bool,
                      **method_args: Any) -> Any:
    """`config_class` (SFTConfig, DPOConfig) for one run: the shared settings here, the method's in `method_args`
    (which may replace a shared one).

    With `keep_best`, a checkpoint is saved at every evaluation and the Trainer reloads the best-eval-loss one at
    the end (after early stopping too); otherwise every `save_steps`. The evaluation interval is provisional
    until `schedule` sets it from the rows the trainer prepared."""
    best = keeps_best(cfg, has_eval)
    mode = precision(device, cfg.precision)
    shared = dict(
        output_dir=str(output_dir), num_train_epochs=cfg.epoch, max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler_type, warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, seed=cfg.seed, data_seed=cfg.seed,
        bf16=mode == "bf16", fp16=mode == "fp16", use_cpu=device == "cpu", logging_steps=cfg.logging_steps,
        gradient_checkpointing=cfg.gradient_checkpointing, gradient_checkpointing_kwargs={"use_reentrant": False},
        eval_strategy="steps" if has_eval else "no", eval_steps=1,
        save_strategy="steps", save_steps=1 if best else cfg.save_steps, save_total_limit=1,
        load_best_model_at_end=best, metric_for_best_model="eval_loss" if best else None, greater_is_better=False,
        report_to=[], use_liger_kernel=liger(cfg, device),
        remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=True,
        train_sampling_strategy="group_by_length" if batching(cfg, device) == "group" else "random",
    )
    return config_class(**{**shared, **method_args})  # a method's own value of a shared setting wins


def schedule(args: Any, cfg: TrainConfig, rows: int, has_eval: bool) -> None:
    """Evaluate `evals_per_epoch` times an epoch of `rows` training rows (and checkpoint at each evaluation with
    `keep_best`), counted in optimizer steps across the launched processes."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    steps_per_epoch = max(1, math.ceil(rows / (cfg.per_device_train_batch_size * world_size)
                                       / cfg.gradient_accumulation_steps))
    args.eval_steps = max(1, steps_per_epoch // cfg.evals_per_epoch)
    if keeps_best(cfg, has_eval):
        args.save_steps = args.eval_steps
