"""What underdog adds to TRL's trainers, as TrainerCallbacks: each logged loss (and a preference run's reward
margin and accuracy) into the store as it happens, early stopping on the overfit diagnosis, and the progress bar.

    StoreCallback(project, manifest, cfg)     # train_metrics rows at every logging step; stops on overfitting
    ProgressCallback("training <id>", reporter)
    history_of(trainer.state.log_history, final_eval, trainer.state)   # the manifest's history
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from underdog.config import TrainConfig
from underdog.progress import Reporter, Task
from underdog.project import Project
from underdog.train import store as tables
from underdog.train.diagnose import Overfit, diagnose
from underdog.train.runs import RunManifest

# TRL's preference trainers log these (and `eval_`-prefixed ones at evaluation); the history keeps them as
REWARDS = {"rewards/margins": "reward_margin", "rewards/accuracies": "reward_accuracy"}


def diagnose_run(history: list[dict[str, Any]], cfg: TrainConfig) -> Overfit:
    """The overfit diagnosis with the run's thresholds."""
    return diagnose(history, gap=cfg.overfit_gap, patience=cfg.overfit_patience, min_rise=cfg.overfit_min_rise,
                    min_rise_ratio=cfg.overfit_min_rise_ratio)


def rewards_of(logs: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """`{"reward_margin", "reward_accuracy"}` from one trainer log (empty for supervised runs)."""
    return {name: logs[prefix + key] for key, name in REWARDS.items() if prefix + key in logs}


def history_of(log_history: list[dict[str, Any]], final_eval: dict[str, float], state: Any) -> list[dict[str, Any]]:
    """The trainer's log as `{"step", "epoch", "loss"|"eval_loss", "learning_rate"?, "reward_margin"?,
    "reward_accuracy"?}` entries."""
    keep = []
    for h in log_history:
        entry = {"step": h["step"], "epoch": round(h.get("epoch", 0.0), 4)}
        if "loss" in h:
            keep.append({**entry, "loss": h["loss"], "learning_rate": h.get("learning_rate"), **rewards_of(h)})
        elif "eval_loss" in h:
            keep.append({**entry, "eval_loss": h["eval_loss"], **rewards_of(h, "eval_")})
    if "eval_loss" in final_eval:
        keep.append({"step": state.global_step, "epoch": round(state.epoch or 0, 4),
                     "eval_loss": final_eval["eval_loss"], **rewards_of(final_eval, "eval_")})
    return keep


def StoreCallback(project: Project, manifest: RunManifest, cfg: TrainConfig) -> Any:  # noqa: N802
    """A TrainerCallback that writes each logged loss (and reward margin / accuracy) into the store and, with
    `early_stopping`, stops the run once the overfit diagnosis fires."""
    from transformers import TrainerCallback

    class _StoreCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            logs = logs or {}
            if not state.is_world_process_zero:
                return
            for split, key, prefix in (("train", "loss", ""), ("eval", "eval_loss", "eval_")):
                if key in logs:
                    rewards = rewards_of(logs, prefix)
                    tables.put_metric(project.store, {
                        "run_id": manifest.id, "step": state.global_step, "epoch": state.epoch, "split": split,
                        "loss": logs[key], "learning_rate": logs.get("learning_rate"),
                        "reward_margin": rewards.get("reward_margin"),
                        "reward_accuracy": rewards.get("reward_accuracy")})

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
            for key, name in (("loss", "train"), ("eval_loss", "eval"), ("rewards/accuracies", "reward acc")):
                if key in logs:
                    self.losses[name] = f"{logs[key]:.3f}"
            self.task.describe(f"{label}  " + " · ".join(f"{k} {v}" for k, v in self.losses.items()))

        def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            self.scope.close()
            self.task = None

    return _ProgressCallback()
