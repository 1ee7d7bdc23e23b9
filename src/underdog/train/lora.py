"""LoRA SFT of the `student` model: the training recipe.

    underdog train --dataset v1 epoch=3 lora_r=16 lora_alpha=32
    underdog train --resume <run-id>          # continue an interrupted run from its last checkpoint

Recipe (`_run`, one function per step, read top to bottom): `setup` (resolve the hyperparameters, check the memory
estimate, load the student and wrap it with LoRA on the target modules, tokenize with the student's chat template,
assistant-only labels, train/eval split) -> `fit` (the transformers Trainer on padding-free batches: checkpoints for
resuming; its callbacks write train/eval loss into the store at every logging step and run the overfit check at
every evaluation) -> `_save` (adapter, tokenizer, manifest and loss curve) -> `cleanup` (the checkpoints).
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
import time
import traceback
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from underdog import tracking
from underdog.config import TrainConfig, apply_overrides, describe_validation_error
from underdog.data.dataset import list_datasets, load_dataset, load_manifest
from underdog.errors import ConfigError, UnderdogError
from underdog.layout import ADAPTER_DIR, CHECKPOINTS_DIR, LOSS_PLOT_FILE
from underdog.progress import Reporter, Task
from underdog.project import Project
from underdog.train import store as tables
from underdog.train.data import CountingCollator, build_splits, make_collator
from underdog.train.devices import (
    attention,
    pin_one_device,
    precision,
    release_memory,
    torch_dtype,
    training_device,
)
from underdog.train.diagnose import diagnose
from underdog.train.memory import check_fits, configured_limit_gib, device_memory_gb, estimate, model_shape
from underdog.train.runs import RunManifest, has_run, load_run, plot_losses, save_manifest

# peft still calls this transformers property; the notice says nothing a user can act on.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def resolve_config(project: Project, overrides: dict[str, Any] | list[str] | None = None) -> TrainConfig:
    """The project's `train:` section with overrides (`{"epoch": 3}` or `["epoch=3", "train.lora_r=16"]`)."""
    data = project.config.train.model_dump()
    if isinstance(overrides, dict):
        data.update(overrides)
    elif overrides:
        data = apply_overrides(data, [o.removeprefix("train.") for o in overrides], source="overrides")
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, Path("train"), "")) from None


def is_main_process() -> bool:
    """False on the other ranks of an `accelerate launch`: only rank 0 writes files and store rows."""
    return int(os.environ.get("RANK", "0")) == 0


def record_manifest(project: Project, manifest: RunManifest) -> None:
    """Write the run's manifest and store row (rank 0 only)."""
    if is_main_process():
        save_manifest(project.root, manifest, project.store)


def new_run_id(dataset: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{dataset}-{secrets.token_hex(2)}"


def library_versions() -> dict[str, str]:
    import accelerate
    import peft
    import torch
    import transformers

    import underdog

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
            "accelerate": accelerate.__version__, "underdog": getattr(underdog, "__version__", "0")}


def train(project: Project, dataset: str | None = None, overrides: dict[str, Any] | list[str] | None = None, *,
          run_id: str | None = None, sweep: str | None = None, callbacks: list[Any] | None = None) -> RunManifest:
    """Train one LoRA run and return its manifest; an existing unfinished `run_id` resumes from its checkpoint.

    A failure (out of memory, refused memory estimate, bad target module, interruption) is recorded in the
    manifest with its reason, then raised as UnderdogError (KeyboardInterrupt is re-raised as is).
    """
    manifest = start_manifest(project, dataset, overrides, run_id, sweep)
    if manifest.status == "done":
        return manifest
    try:
        _run(project, manifest, TrainConfig.model_validate(manifest.hyperparameters), callbacks or [])
    except KeyboardInterrupt as exc:
        fail_run(project, manifest, f"interrupted; resume with `underdog train --resume {manifest.id}`")
        traceback.clear_frames(exc.__traceback__)  # the recipe's frames hold the model
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is recorded with its reason
        fail_run(project, manifest, _reason(exc))
        traceback.clear_frames(exc.__traceback__)  # ... so that the next run of a sweep gets the GPU back
        raise UnderdogError(f"run {manifest.id} failed: {manifest.error}") from exc
    finally:
        release_memory()
        tracking.finish(project, manifest)  # the tracker runs get the final metrics and status
    return manifest


def start_manifest(project: Project, dataset: str | None, overrides: Any, run_id: str | None,
                    sweep: str | None) -> RunManifest:
    """The run's manifest, recorded as running: an unfinished existing run is reopened, else a new one."""
    if has_run(project.root, run_id):
        manifest = load_run(project.root, run_id)
        if manifest.status != "done":
            manifest.status, manifest.error = "running", None
            record_manifest(project, manifest)
        return manifest
    cfg = resolve_config(project, overrides)
    dataset = resolve_dataset(project.root, dataset or cfg.dataset)
    data_manifest = load_manifest(project.root, dataset)
    student = project.config.models["student"]
    if student.provider != "local":
        raise ConfigError(f"models.student is a {student.provider} model; training needs a local one "
                          "(provider: local, model: an HF id or path)")
    manifest = RunManifest(id=run_id or new_run_id(dataset), status="running", dataset=dataset,
                           base_model=student.model, hyperparameters=cfg.model_dump(exclude={"sagemaker"}),
                           dataset_sha256=data_manifest.sha256, sweep=sweep, versions=library_versions())
    record_manifest(project, manifest)
    return manifest


def resolve_dataset(root: Path, name: str | None = None) -> str:
    """`name`, else the newest dataset version."""
    if name:
        return name
    names = list_datasets(root)
    if not names:
        raise UnderdogError("no dataset yet: create one with the data commands, or pass --dataset NAME")
    return names[-1]


def _reason(exc: BaseException) -> str:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return "out of memory: " + str(exc).splitlines()[0][:200]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if isinstance(exc, UnderdogError) else f"{type(exc).__name__}: {text}"


def fail_run(project: Project, manifest: RunManifest, reason: str) -> None:
    """Record the run as failed, with its reason."""
    manifest.status, manifest.error = "failed", reason
    record_manifest(project, manifest)


@dataclass
class Session:
    """What `setup` prepared for one run: the Trainer (model, data, callbacks), tokenizer, splits and run folder."""

    trainer: Any
    tokenizer: Any
    splits: Any
    folder: Path


def _run(project: Project, manifest: RunManifest, cfg: TrainConfig, callbacks: list[Any]) -> None:
    """The recipe: setup, train, save, cleanup."""
    session = setup(project, manifest, cfg, callbacks)
    result, final_eval = fit(session)
    _save(project, manifest, cfg, session, result, final_eval)
    cleanup(session)


def setup(project: Project, manifest: RunManifest, cfg: TrainConfig, callbacks: list[Any]) -> Session:
    """Check memory, load the student with LoRA, tokenize and split the dataset, build the Trainer: the store
    callback logs each loss and stops early on overfitting, the progress callback draws the bar."""
    from underdog.llm.local import resolve_model_path

    device = training_device(cfg.device)
    model_path = resolve_model_path(manifest.base_model)
    max_length = _check_memory(manifest, cfg, model_path, device)
    manifest.device = device
    model, tokenizer = setup_model(model_path, cfg, device)
    examples = load_dataset(project.root, manifest.dataset)
    splits = build_splits(tokenizer, examples, max_length=max_length,
                          validation_split_ratio=cfg.validation_split_ratio, seed=cfg.train_data_split_seed,
                          max_train_samples=cfg.max_train_samples, max_val_samples=cfg.max_val_samples)
    if not splits.train:
        raise UnderdogError(f"dataset {manifest.dataset!r} has no example with an assistant reply to train on")
    folder = project.run_dir(manifest.id)
    progress = ProgressCallback(f"training {manifest.id}", project.reporter)
    trainer = make_trainer(model, tokenizer, splits, cfg, device, folder / CHECKPOINTS_DIR,
                           [StoreCallback(project, manifest, cfg), progress, *callbacks])
    tracking.attach(trainer, project, manifest)  # train.report_to: MLflow, W&B, TensorBoard, Trackio
    return Session(trainer, tokenizer, splits, folder)


def fit(session: Session) -> tuple[Any, dict[str, float]]:
    """Train from the last checkpoint (if any), then evaluate once more unless the last step just did."""
    trainer = session.trainer
    result = trainer.train(resume_from_checkpoint=_last_checkpoint(session.folder / CHECKPOINTS_DIR))
    final_eval = trainer.evaluate() if session.splits.eval and not _evaluated_last(trainer) else {}
    return result, final_eval


def cleanup(session: Session) -> None:
    """Drop the checkpoints of a finished run (rank 0; the adapter is saved). GPU memory is freed by `train`."""
    if is_main_process():
        shutil.rmtree(session.folder / CHECKPOINTS_DIR, ignore_errors=True)


def _check_memory(manifest: RunManifest, cfg: TrainConfig, model_path: str, device: str) -> int:
    """Refuse a run that cannot fit the device; return the effective max_input_length."""
    shape = model_shape(model_path)
    max_length = cfg.max_input_length if cfg.max_input_length > 0 else min(1024, shape["max_positions"])
    est = estimate(shape, lora_r=cfg.lora_r, target_modules=cfg.target_modules,
                   batch_size=cfg.per_device_train_batch_size, seq_len=max_length,
                   bf16=precision(device, cfg.precision) != "fp32", gradient_checkpointing=cfg.gradient_checkpointing,
                   lora_dropout=cfg.lora_dropout, shards=fsdp_shards())
    manifest.memory_estimate_gb = round(est.total_gb, 2)
    check_fits(est, configured_limit_gib(cfg.device_memory_gb) or device_memory_gb(device), what=f"run {manifest.id}")
    return max_length


def fsdp_shards() -> int:
    """The processes FSDP splits the weights across under `accelerate launch --use_fsdp` (1 otherwise)."""
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true", "yes")
    return int(os.environ.get("WORLD_SIZE", "1")) if fsdp else 1


def setup_model(model_path: str, cfg: TrainConfig, device: str) -> tuple[Any, Any]:
    """The student (bf16 from sm80, fp16 on older GPUs, fp32 on CPU: `precision`) with LoRA adapters on
    `cfg.target_modules`, and its tokenizer."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.padding_side = "right"  # left padding would shift the positions of padded training rows
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch_dtype(precision(device, cfg.precision))
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, attn_implementation=attention(device))
    # Without a KV cache, transformers reads restarting position_ids as packed sequences and builds a
    # block-diagonal mask; with one (the config default) the flattened examples would attend to each other.
    model.config.use_cache = False
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, lora), tokenizer


def batching(cfg: TrainConfig, device: str) -> str:
    """The effective `packing` mode: `auto` flattens with flash-attn, groups by length otherwise."""
    if cfg.packing != "auto":
        return cfg.packing
    return "flatten" if attention(device) == "flash_attention_2" else "group"


def keeps_best(cfg: TrainConfig, has_eval: bool) -> bool:
    """Whether the run ends with its best-eval-loss adapter (`keep_best`; default: with early stopping).

    Not by default otherwise: eval loss is not answer quality. On the demo's invented facts the eval loss on
    held-out phrasings rose while the run learned the facts; its best-eval-loss adapter stated 2 of 16 facts, the
    last one 14 of 16. Pick runs by judged quality (`underdog judge`, `recommend`) instead."""
    return has_eval and (cfg.early_stopping if cfg.keep_best is None else cfg.keep_best)


def training_arguments(cfg: TrainConfig, device: str, output_dir: Path, n_train: int, world_size: int = 1,
                       has_eval: bool = True) -> Any:
    """TrainingArguments from the JumpStart-named hyperparameters (evaluation `evals_per_epoch` times an epoch).

    With `keep_best`, a checkpoint is saved at every evaluation and the Trainer reloads the best-eval-loss one at
    the end (after early stopping too); otherwise every `save_steps`."""
    from transformers import TrainingArguments

    steps_per_epoch = max(1, math.ceil(n_train / (cfg.per_device_train_batch_size * world_size)
                                       / cfg.gradient_accumulation_steps))
    eval_steps = max(1, steps_per_epoch // cfg.evals_per_epoch)
    best = keeps_best(cfg, has_eval)
    mode = precision(device, cfg.precision)
    return TrainingArguments(
        output_dir=str(output_dir), num_train_epochs=cfg.epoch, max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler_type, warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, seed=cfg.seed, data_seed=cfg.seed,
        bf16=mode == "bf16", fp16=mode == "fp16", use_cpu=device == "cpu", logging_steps=cfg.logging_steps,
        eval_strategy="steps" if has_eval else "no", eval_steps=eval_steps,
        save_strategy="steps", save_steps=eval_steps if best else cfg.save_steps, save_total_limit=1,
        load_best_model_at_end=best, metric_for_best_model="eval_loss" if best else None, greater_is_better=False,
        report_to=[],
        remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=True,
        train_sampling_strategy="group_by_length" if batching(cfg, device) == "group" else "random",
    )


def make_trainer(model: Any, tokenizer: Any, splits: Any, cfg: TrainConfig, device: str, output_dir: Path,
                 callbacks: list[Any]) -> Any:
    from datasets import Dataset
    from transformers import PrinterCallback, Trainer

    train_ds = Dataset.from_list([r.to_dict() for r in splits.train])
    eval_ds = Dataset.from_list([r.to_dict() for r in splits.eval]) if splits.eval else None
    args = training_arguments(cfg, device, output_dir, len(splits.train), int(os.environ.get("WORLD_SIZE", "1")),
                              has_eval=eval_ds is not None)
    pin_one_device(args, device)  # no nn.DataParallel over the other GPUs; `device: cuda:1` means GPU 1
    collator = CountingCollator(make_collator(tokenizer, batching(cfg, device), flash=attention(device) != "sdpa"),
                                active=lambda: model.training)  # evaluation batches are not counted
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds, data_collator=collator,
                      callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # losses show in our progress bar and go to the store
    trainer.counting = collator
    return trainer


def _last_checkpoint(folder: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def _evaluated_last(trainer: Any) -> bool:
    return any("eval_loss" in h and h["step"] == trainer.state.global_step for h in trainer.state.log_history)


def _save(project: Project, manifest: RunManifest, cfg: TrainConfig, session: Session, result: Any,
          final_eval: dict[str, float]) -> None:
    """Save the adapter and tokenizer, then the manifest (metrics, history, overfit diagnosis) and loss curve."""
    trainer, tokenizer, splits, folder = session.trainer, session.tokenizer, session.splits, session.folder
    trainer.save_model(str(folder / ADAPTER_DIR))  # the adapter only; rank 0 only; gathers FSDP shards
    if not is_main_process():
        return
    tokenizer.save_pretrained(folder / ADAPTER_DIR)
    (folder / ADAPTER_DIR / "training_args.bin").unlink(missing_ok=True)
    manifest.history = history_of(trainer.state.log_history, final_eval, trainer.state)
    train_losses = [h["loss"] for h in manifest.history if "loss" in h]
    eval_losses = [h["eval_loss"] for h in manifest.history if "eval_loss" in h]
    runtime = result.metrics.get("train_runtime") or 0.0
    kept = kept_checkpoint(trainer.state, manifest.history) if keeps_best(cfg, bool(splits.eval)) else None
    counted = trainer.counting  # this process's training batches (since the resume, for a resumed run)
    manifest.metrics = {
        **{k: v for k, v in manifest.metrics.items() if k == "stopped_early_at_epoch"},
        "train_loss": train_losses[-1] if train_losses else None,
        "eval_loss": kept["eval_loss"] if kept else (eval_losses[-1] if eval_losses else None),
        "last_eval_loss": eval_losses[-1] if eval_losses else None, "kept": kept,
        "first_train_loss": train_losses[0] if train_losses else None,
        "min_eval_loss": min(eval_losses) if eval_losses else None,
        "steps": trainer.state.global_step, "epochs": round(trainer.state.epoch or 0, 3),
        "train_examples": len(splits.train), "eval_examples": len(splits.eval), "dropped_examples": splits.dropped,
        "train_runtime_s": round(runtime, 2),
        "train_tokens_per_s": round(counted.real / runtime, 1) if runtime else None,
        "padding_share": round(counted.padding_share, 4), "batching": batching(cfg, manifest.device or "cpu"),
    }
    manifest.overfit = diagnose_run(manifest.history, cfg).to_json()
    manifest.status, manifest.error = "done", None
    plot_losses(manifest.history, folder / LOSS_PLOT_FILE, title=manifest.id, overfit_epoch=manifest.overfit["epoch"])
    save_manifest(project.root, manifest, project.store)


def diagnose_run(history: list[dict[str, Any]], cfg: TrainConfig) -> Any:
    """The overfit diagnosis with the run's thresholds."""
    return diagnose(history, gap=cfg.overfit_gap, patience=cfg.overfit_patience, min_rise=cfg.overfit_min_rise,
                    min_rise_ratio=cfg.overfit_min_rise_ratio)


def kept_checkpoint(state: Any, history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """`{"step", "epoch", "eval_loss"}` of the best evaluation, whose adapter the Trainer reloaded at the end."""
    step = getattr(state, "best_global_step", None)
    if not step or state.best_metric is None:
        return None
    epoch = next((h["epoch"] for h in history if "eval_loss" in h and h["step"] == step), None)
    return {"step": step, "epoch": epoch, "eval_loss": state.best_metric}


def history_of(log_history: list[dict[str, Any]], final_eval: dict[str, float], state: Any) -> list[dict[str, Any]]:
    """The trainer's log as `{"step", "epoch", "loss"|"eval_loss", "learning_rate"?}` entries."""
    keep = []
    for h in log_history:
        entry = {"step": h["step"], "epoch": round(h.get("epoch", 0.0), 4)}
        if "loss" in h:
            keep.append({**entry, "loss": h["loss"], "learning_rate": h.get("learning_rate")})
        elif "eval_loss" in h:
            keep.append({**entry, "eval_loss": h["eval_loss"]})
    if "eval_loss" in final_eval:
        keep.append({"step": state.global_step, "epoch": round(state.epoch or 0, 4),
                     "eval_loss": final_eval["eval_loss"]})
    return keep


def StoreCallback(project: Project, manifest: RunManifest, cfg: TrainConfig) -> Any:  # noqa: N802
    """A TrainerCallback that writes each logged loss into the store and, with `early_stopping`, stops the run
    once the overfit diagnosis fires."""
    from transformers import TrainerCallback

    class _StoreCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            logs = logs or {}
            if not state.is_world_process_zero:
                return
            for split, key in (("train", "loss"), ("eval", "eval_loss")):
                if key in logs:
                    tables.put_metric(project.store, {
                        "run_id": manifest.id, "step": state.global_step, "epoch": state.epoch, "split": split,
                        "loss": logs[key], "learning_rate": logs.get("learning_rate")})

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # type: ignore[no-untyped-def]
            if not cfg.early_stopping:
                return
            verdict = diagnose_run(history_of(state.log_history, {}, state), cfg)
            if verdict.flag:
                manifest.metrics["stopped_early_at_epoch"] = round(state.epoch or 0, 3)
                control.should_training_stop = True

    return _StoreCallback()


def ProgressCallback(label: str, reporter: Reporter) -> Any:  # noqa: N802
    """A TrainerCallback reporting one task per run (steps, then the latest losses in its label) to `reporter`,
    in place of the Trainer's tqdm bars and printed log dictionaries."""
    from transformers import TrainerCallback

    class _ProgressCallback(TrainerCallback):
        def __init__(self) -> None:
            self.scope = ExitStack()
            self.task: Task | None = None
            self.losses: dict[str, str] = {}  # latest "train" / "eval" loss, as shown

        def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if state.is_world_process_zero:
                self.task = self.scope.enter_context(reporter.task(label, state.max_steps))
                self.task.advance(state.global_step)  # a resumed run starts where it stopped

        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if self.task is not None:
                self.task.advance()

        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            if self.task is None or not logs:
                return
            for key, name in (("loss", "train"), ("eval_loss", "eval")):
                if key in logs:
                    self.losses[name] = f"{logs[key]:.3f}"
            self.task.describe(f"{label}  " + " · ".join(f"{k} {v}" for k, v in self.losses.items()))

        def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            self.scope.close()
            self.task = None

    return _ProgressCallback()
