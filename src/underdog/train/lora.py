"""LoRA training of the `student` model: the training recipe, on TRL's trainers.

    underdog train --dataset v1 epoch=3 lora_r=16 lora_alpha=32
    underdog train --method dpo -d prefs --from <run-id>   # preference training on top of a supervised run
    underdog train --resume <run-id>          # continue an interrupted run from its last checkpoint

Recipe (`_run`, one function per step, read top to bottom): `setup` (resolve the hyperparameters, check the memory
estimate, load the student, split the dataset, build TRL's `SFTTrainer` with the run's LoRA: chat template,
completion-only loss, batching, `sft.py`; or, for `method: dpo`, TRL's `DPOTrainer` on the parent run's adapter,
`preference.py`) -> `fit` (train: checkpoints for resuming; the callbacks write train/eval
loss into the store at every logging step and run the overfit check at every evaluation) -> `_save` (adapter,
tokenizer, manifest and loss curve) -> `cleanup` (the checkpoints).
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from underdog import tracking
from underdog.config import TrainConfig, apply_overrides, describe_validation_error
from underdog.data.dataset import list_datasets, load_dataset, load_manifest
from underdog.data.preferences import load_preferences
from underdog.errors import ConfigError, UnderdogError
from underdog.layout import ADAPTER_DIR, CHECKPOINTS_DIR, LOSS_PLOT_FILE
from underdog.project import Project
from underdog.train.arguments import batching, keeps_best
from underdog.train.callbacks import ProgressCallback, StoreCallback, diagnose_run, history_of
from underdog.train.data import build_splits
from underdog.train.devices import precision, release_memory, training_device
from underdog.train.memory import check_fits, configured_limit_gib, device_memory_gb, estimate, model_shape
from underdog.train.preference import dpo_trainer, drop_reference, parent_run, preference_rows, with_parent_lora
from underdog.train.runs import RunManifest, has_run, load_run, plot_losses, save_manifest
from underdog.train.sft import load_student, sft_trainer

# peft still calls this transformers property; the notice says nothing a user can act on.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def resolve_config(project: Project, overrides: dict[str, Any] | list[str] | None = None) -> TrainConfig:
    """The project's `train:` section with overrides (`{"epoch": 3}` or `["epoch=3", "train.lora_r=16"]`); a
    preference run takes `PREFERENCE_DEFAULTS` for the keys neither sets."""
    data = project.config.train.model_dump()
    if isinstance(overrides, dict):
        data.update(overrides)
    elif overrides:
        data = apply_overrides(data, [o.removeprefix("train.") for o in overrides], source="overrides")
    given = set(project.config.train.model_fields_set) | override_keys(overrides)
    if data.get("method", "sft") != "sft":
        data.update({k: v for k, v in PREFERENCE_DEFAULTS.items() if k not in given})
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, Path("train"), "")) from None


# The settings of the measured DPO run (docs/training.md): lr 1e-3, 4 epochs moved 15 of 16 held-out answers to the
# preferred form; the supervised defaults (1e-4, 5 epochs) are JumpStart's for SFT.
PREFERENCE_DEFAULTS = {"learning_rate": 1e-3, "epoch": 4}


def override_keys(overrides: dict[str, Any] | list[str] | None) -> set[str]:
    """The `train:` keys an override sets (`{"epoch": 3}` or `["train.epoch=3"]` -> {"epoch"})."""
    if isinstance(overrides, dict):
        return set(overrides)
    return {o.removeprefix("train.").split("=", 1)[0].split(".")[0].strip() for o in overrides or []}


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
    import trl

    import underdog

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
            "trl": trl.__version__, "accelerate": accelerate.__version__,
            "underdog": getattr(underdog, "__version__", "0")}


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
    hyperparameters = checked_inputs(project, cfg, dataset, student.model)
    manifest = RunManifest(id=run_id or new_run_id(dataset), status="running", dataset=dataset,
                           base_model=student.model, hyperparameters=hyperparameters,
                           dataset_sha256=data_manifest.sha256, sweep=sweep, versions=library_versions())
    record_manifest(project, manifest)
    return manifest


def checked_inputs(project: Project, cfg: TrainConfig, dataset: str, student: str) -> dict[str, Any]:
    """Refuse, before anything is written, a dataset of the wrong kind or without rows, and a preference run
    without a finished parent on this student; return the run's hyperparameters (a preference run's LoRA shape is
    its parent adapter's)."""
    hyperparameters = cfg.model_dump(exclude={"sagemaker"})
    if cfg.method == "sft":
        if cfg.from_run:
            raise ConfigError("train.from_run is for preference runs (--method dpo); a supervised run starts "
                              "from the base model")
        if not load_dataset(project.root, dataset):  # also refuses a preference dataset, saying which command
            raise UnderdogError(f"dataset {dataset!r} has no example to train on")
        return hyperparameters
    parent = parent_run(project.root, cfg, student)
    if not load_preferences(project.root, dataset):  # also refuses a supervised dataset, saying which command
        raise UnderdogError(f"preference dataset {dataset!r} has no pair to train on")
    return with_parent_lora(hyperparameters, parent)


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
    """What `setup` prepared for one run: the trainer (model, rows, callbacks), the rows it trains and evaluates on,
    and the run folder."""

    trainer: Any
    counts: dict[str, int]  # train_examples, eval_examples, dropped_examples
    folder: Path


def _run(project: Project, manifest: RunManifest, cfg: TrainConfig, callbacks: list[Any]) -> None:
    """The recipe: setup, train, save, cleanup."""
    session = setup(project, manifest, cfg, callbacks)
    result, final_eval = fit(session)
    _save(project, manifest, cfg, session, result, final_eval)
    cleanup(session)


def setup(project: Project, manifest: RunManifest, cfg: TrainConfig, callbacks: list[Any]) -> Session:
    """Check memory, load the student, split the dataset, build the trainer with the run's LoRA: the store
    callback logs each loss and stops early on overfitting, the progress callback draws the bar."""
    from underdog.llm.local import resolve_model_path

    device = training_device(cfg.device)
    model_path = resolve_model_path(manifest.base_model)
    max_length = _check_memory(manifest, cfg, model_path, device)
    manifest.device = device
    folder = project.run_dir(manifest.id)
    callbacks = [StoreCallback(project, manifest, cfg), ProgressCallback(f"training {manifest.id}", project.reporter),
                 *callbacks]
    build = supervised if cfg.method == "sft" else preference
    trainer, counts = build(project, manifest, cfg, model_path, device, folder / CHECKPOINTS_DIR, callbacks,
                            max_length)
    tracking.attach(trainer, project, manifest)  # train.report_to: MLflow, W&B, TensorBoard, Trackio
    return Session(trainer, counts, folder)


def supervised(project: Project, manifest: RunManifest, cfg: TrainConfig, model_path: str, device: str,
               output_dir: Path, callbacks: list[Any], max_length: int) -> tuple[Any, dict[str, int]]:
    """TRL's SFTTrainer over the dataset's prompt-completion rows, a new LoRA on the student."""
    model, tokenizer = load_student(model_path, cfg, device)
    splits = build_splits(load_dataset(project.root, manifest.dataset),
                          validation_split_ratio=cfg.validation_split_ratio, seed=cfg.train_data_split_seed,
                          max_train_samples=cfg.max_train_samples, max_val_samples=cfg.max_val_samples)
    if not splits.train:
        raise UnderdogError(f"dataset {manifest.dataset!r} has no example with an assistant reply to train on")
    return sft_trainer(model, tokenizer, splits, cfg, device, output_dir, callbacks, max_length)


def preference(project: Project, manifest: RunManifest, cfg: TrainConfig, model_path: str, device: str,
               output_dir: Path, callbacks: list[Any], max_length: int) -> tuple[Any, dict[str, int]]:
    """TRL's DPOTrainer over the preference pairs, training the parent run's adapter against a frozen copy."""
    parent = parent_run(project.root, cfg, manifest.base_model)
    rows = preference_rows(load_preferences(project.root, manifest.dataset), cfg)
    if not rows[0]:
        raise UnderdogError(f"preference dataset {manifest.dataset!r} leaves no pair to train on")
    return dpo_trainer(model_path, project.root / parent.adapter_dir, rows, cfg, device, output_dir, callbacks,
                       max_length)


def fit(session: Session) -> tuple[Any, dict[str, float]]:
    """Train from the last checkpoint (if any), then evaluate once more unless the last step just did."""
    trainer = session.trainer
    result = trainer.train(resume_from_checkpoint=_last_checkpoint(session.folder / CHECKPOINTS_DIR))
    has_eval = trainer.eval_dataset is not None
    final_eval = trainer.evaluate() if has_eval and not _evaluated_last(trainer) else {}
    return result, final_eval


def cleanup(session: Session) -> None:
    """Drop the checkpoints of a finished run (rank 0; the adapter is saved). GPU memory is freed by `train`."""
    if is_main_process():
        shutil.rmtree(session.folder / CHECKPOINTS_DIR, ignore_errors=True)


def _check_memory(manifest: RunManifest, cfg: TrainConfig, model_path: str, device: str) -> int:
    """Refuse a run that cannot fit the device; return the effective max_input_length."""
    shape = model_shape(model_path)
    max_length = cfg.max_input_length if cfg.max_input_length > 0 else min(1024, shape["max_positions"])
    pairs = 1 if cfg.method == "sft" else 2  # a preference batch holds each prompt with both answers
    est = estimate(shape, lora_r=cfg.lora_r, target_modules=cfg.target_modules,
                   batch_size=cfg.per_device_train_batch_size * pairs, seq_len=max_length,
                   bf16=precision(device, cfg.precision) != "fp32", gradient_checkpointing=cfg.gradient_checkpointing,
                   lora_dropout=cfg.lora_dropout, shards=fsdp_shards())
    manifest.memory_estimate_gb = round(est.total_gb, 2)
    check_fits(est, configured_limit_gib(cfg.device_memory_gb) or device_memory_gb(device), what=f"run {manifest.id}")
    return max_length


def fsdp_shards() -> int:
    """The processes FSDP splits the weights across under `accelerate launch --use_fsdp` (1 otherwise)."""
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true", "yes")
    return int(os.environ.get("WORLD_SIZE", "1")) if fsdp else 1


def _last_checkpoint(folder: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def _evaluated_last(trainer: Any) -> bool:
    return any("eval_loss" in h and h["step"] == trainer.state.global_step for h in trainer.state.log_history)


def _save(project: Project, manifest: RunManifest, cfg: TrainConfig, session: Session, result: Any,
          final_eval: dict[str, float]) -> None:
    """Save the adapter and tokenizer, then the manifest (metrics, history, overfit diagnosis) and loss curve."""
    trainer, folder = session.trainer, session.folder
    drop_reference(trainer)  # a preference run's frozen reference copy is not part of its adapter
    trainer.save_model(str(folder / ADAPTER_DIR))  # the adapter only; rank 0 only; gathers FSDP shards
    if not is_main_process():
        return
    trainer.processing_class.save_pretrained(folder / ADAPTER_DIR)
    (folder / ADAPTER_DIR / "training_args.bin").unlink(missing_ok=True)
    (folder / ADAPTER_DIR / "README.md").unlink(missing_ok=True)  # TRL's generic model card, not this run's
    manifest.history = history_of(trainer.state.log_history, final_eval, trainer.state)
    manifest.metrics = {**{k: v for k, v in manifest.metrics.items() if k == "stopped_early_at_epoch"},
                        **run_metrics(manifest, cfg, session, result)}
    manifest.overfit = diagnose_run(manifest.history, cfg).to_json()
    manifest.status, manifest.error = "done", None
    plot_losses(manifest.history, folder / LOSS_PLOT_FILE, title=manifest.id, overfit_epoch=manifest.overfit["epoch"])
    save_manifest(project.root, manifest, project.store)


def run_metrics(manifest: RunManifest, cfg: TrainConfig, session: Session, result: Any) -> dict[str, Any]:
    """The manifest's metrics: losses (of the kept adapter), steps, rows, throughput and padding."""
    trainer, history = session.trainer, manifest.history
    train_losses = [h["loss"] for h in history if "loss" in h]
    eval_losses = [h["eval_loss"] for h in history if "eval_loss" in h]
    runtime = result.metrics.get("train_runtime") or 0.0
    kept = kept_checkpoint(trainer.state, history) if keeps_best(cfg, bool(session.counts["eval_examples"])) else None
    counted = trainer.data_collator  # a CountingCollator: this process's training batches (since a resume)
    return {
        "train_loss": train_losses[-1] if train_losses else None,
        "eval_loss": kept["eval_loss"] if kept else (eval_losses[-1] if eval_losses else None),
        "last_eval_loss": eval_losses[-1] if eval_losses else None, "kept": kept,
        "first_train_loss": train_losses[0] if train_losses else None,
        "min_eval_loss": min(eval_losses) if eval_losses else None,
        "steps": trainer.state.global_step, "epochs": round(trainer.state.epoch or 0, 3), **session.counts,
        "train_runtime_s": round(runtime, 2),
        "train_tokens_per_s": round(counted.real / runtime, 1) if runtime else None,
        "padding_share": round(counted.padding_share, 4),
        "batching": batching(cfg, manifest.device or "cpu") if cfg.method == "sft" else "random",
        **last_rewards(history),
    }


def last_rewards(history: list[dict[str, Any]]) -> dict[str, float]:
    """A preference run's last logged reward margin and accuracy, on the training pairs and the held-out ones."""
    out = {}
    for split, key in (("train", "loss"), ("eval", "eval_loss")):
        logged = [h for h in history if key in h and "reward_accuracy" in h]
        if logged:
            out[f"{split}_reward_margin"] = logged[-1].get("reward_margin")
            out[f"{split}_reward_accuracy"] = logged[-1]["reward_accuracy"]
    return out


def kept_checkpoint(state: Any, history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """`{"step", "epoch", "eval_loss"}` of the best evaluation, whose adapter the Trainer reloaded at the end."""
    step = getattr(state, "best_global_step", None)
    if not step or state.best_metric is None:
        return None
    epoch = next((h["epoch"] for h in history if "eval_loss" in h and h["step"] == step), None)
    return {"step": step, "epoch": epoch, "eval_loss": state.best_metric}
