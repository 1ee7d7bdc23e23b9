"""Training runs on disk and in the store: `runs/<id>/manifest.json`, the loss curve, and the runs table.

    runs/<id>/
      manifest.json   {"id", "status", "dataset", "base_model", "hyperparameters", "metrics", "overfit",
                       "error", "created", ...}
      adapter/        PEFT adapter + tokenizer (+ underdog_run.json, a copy of the manifest that travels with it)
      checkpoints/    the trainer's last checkpoint while running (removed when the run is done)
      loss.png        train and eval loss per step

The manifest is the record of truth; the store's `train_runs` / `train_metrics` tables mirror it for queries
(the leaderboard, `underdog runs`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from underdog.errors import UnderdogError
from underdog.layout import ADAPTER_DIR, MANIFEST_FILE, RUN_COPY_FILE, Layout
from underdog.store import Store
from underdog.train import store as tables


@dataclass
class RunManifest:
    id: str
    status: str  # "running" | "done" | "failed"
    dataset: str
    base_model: str
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    overfit: dict[str, Any] = field(default_factory=lambda: {"flag": False, "reason": None, "epoch": None})
    error: str | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    dataset_sha256: str | None = None
    sweep: str | None = None
    device: str | None = None
    memory_estimate_gb: float | None = None
    versions: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # per logging step: step, epoch, loss|eval_loss
    trackers: dict[str, dict[str, str]] = field(default_factory=dict)  # tracker -> its run (underdog/tracking.py)

    @property
    def method(self) -> str:
        """`sft` (supervised) or a preference method (`dpo`), as trained."""
        return str(self.hyperparameters.get("method", "sft"))

    @property
    def adapter_dir(self) -> str:
        """The adapter's folder, relative to the project folder."""
        return str(Layout("").run_dir(self.id) / ADAPTER_DIR)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Where = Layout | Path | str  # a project (a Layout) or its folder


def layout_of(where: Where) -> Layout:
    """The Layout of a project, or of a bare project folder."""
    return where if isinstance(where, Layout) else Layout(where)


def run_dir(where: Where, run_id: str) -> Path:
    """The folder of run `run_id` (`Layout.run_dir`)."""
    return layout_of(where).run_dir(run_id)


def has_run(where: Where, run_id: str | None) -> bool:
    """Whether run `run_id` has a manifest (was started)."""
    return bool(run_id) and (run_dir(where, run_id) / MANIFEST_FILE).exists()


def save_manifest(where: Where, manifest: RunManifest, store: Store | None = None) -> None:
    """Write the manifest atomically (and mirror it into the store when given)."""
    manifest.updated = time.time()
    folder = run_dir(where, manifest.id)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest.to_json(), indent=2)
    tmp = folder / f".{MANIFEST_FILE}.tmp"
    tmp.write_text(text)
    tmp.replace(folder / MANIFEST_FILE)
    if (folder / ADAPTER_DIR).is_dir():
        (folder / ADAPTER_DIR / RUN_COPY_FILE).write_text(text)
    if store is not None:
        record_run(store, manifest)


def load_run(where: Where, run_id: str) -> RunManifest:
    """The manifest of run `run_id` (UnderdogError naming the known runs when there is none)."""
    path = run_dir(where, run_id) / MANIFEST_FILE
    if not path.exists():
        known = ", ".join(m.id for m in list_runs(where)[-5:]) or "none yet"
        raise UnderdogError(f"no run named {run_id!r} in {layout_of(where).runs_dir} (latest: {known})")
    try:
        return RunManifest(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise UnderdogError(f"{path}: not a valid run manifest ({exc})") from None


def list_runs(where: Where) -> list[RunManifest]:
    """Every run of the project, oldest first."""
    folder = layout_of(where).runs_dir
    if not folder.exists():
        return []
    runs = []
    for path in folder.glob(f"*/{MANIFEST_FILE}"):
        try:
            runs.append(RunManifest(**json.loads(path.read_text())))
        except (json.JSONDecodeError, TypeError):
            continue  # a half-written or foreign folder is not a run
    return sorted(runs, key=lambda m: (m.created, m.id))


def run_summaries(where: Where, store: Store) -> list[dict[str, Any]]:
    """Every run as its manifest would read without the loss history, from the store's mirror (one query instead
    of parsing every manifest): id, status, dataset, base_model, hyperparameters, metrics (train_loss,
    eval_loss), overfit, error, sweep, created. Oldest first; runs whose folder is gone are left out."""
    out = []
    for r in tables.runs(store):
        if has_run(where, r["id"]):
            out.append({"id": r["id"], "status": r["status"], "dataset": r["dataset"], "base_model": r["base_model"],
                        "hyperparameters": json.loads(r["hyperparameters"] or "{}"),
                        "metrics": {"train_loss": r["train_loss"], "eval_loss": r["eval_loss"]},
                        "overfit": {"flag": bool(r["overfit_flag"]), "reason": r["overfit_reason"],
                                    "epoch": r["overfit_epoch"]},
                        "error": r["error"], "sweep": r["sweep"], "created": r["created"]})
    return out


def record_run(store: Store, m: RunManifest) -> None:
    """Mirror a manifest into `train_runs` and its history into `train_metrics` (train/store.py)."""
    run = {"id": m.id, "status": m.status, "dataset": m.dataset, "base_model": m.base_model,
           "hyperparameters": json.dumps(m.hyperparameters), "train_loss": m.metrics.get("train_loss"),
           "eval_loss": m.metrics.get("eval_loss"), "overfit_flag": int(bool(m.overfit.get("flag"))),
           "overfit_reason": m.overfit.get("reason"), "overfit_epoch": m.overfit.get("epoch"), "error": m.error,
           "sweep": m.sweep, "created": m.created, "updated": m.updated, "method": m.method,
           "parent_run": m.hyperparameters.get("from_run")}
    metrics = [{"run_id": m.id, "step": h["step"], "epoch": h.get("epoch"),
                "split": "eval" if "eval_loss" in h else "train", "loss": h.get("eval_loss", h.get("loss")),
                "learning_rate": h.get("learning_rate"), "reward_margin": h.get("reward_margin"),
                "reward_accuracy": h.get("reward_accuracy")} for h in m.history]
    tables.put_run(store, run, metrics)


def plot_losses(history: list[dict[str, Any]], path: Path, title: str = "", overfit_epoch: float | None = None) -> None:
    """Train and eval loss against the epoch, as a PNG (matplotlib, Agg backend), with a red line where
    overfitting started when it did."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(h["epoch"], h["loss"]) for h in history if "loss" in h]
    evals = [(h["epoch"], h["eval_loss"]) for h in history if "eval_loss" in h]
    fig, ax = plt.subplots(figsize=(6, 4))
    for points, label, style in ((train, "train", "-"), (evals, "eval", "o-")):
        if points:
            ax.plot(*zip(*points, strict=True), style, label=label)
    if overfit_epoch is not None:
        ax.axvline(overfit_epoch, color="red", linestyle="--", label=f"overfitting from epoch {overfit_epoch}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    if train or evals or overfit_epoch is not None:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
