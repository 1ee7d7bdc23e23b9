"""Experiment trackers: a run's settings, data, losses and judged results in MLflow, W&B, TensorBoard or Trackio.

    train:
      report_to: [mlflow, tensorboard]      # underdog.yaml; none by default; pip install 'underdog[trackers]'

Losses, learning rate and the Trainer's arguments reach each tracker through its own transformers integration
(`MLflowCallback`, `WandbCallback`, `TensorBoardCallback`, `TrackioCallback`): `attach` opens the tracker's run for
the underdog run, names it in the run's manifest (`trackers`) and adds the integration to the run's Trainer.
`finish` adds what those integrations do not know (the JumpStart-named hyperparameters, the dataset version and
its hash, the final metrics) and closes the tracker runs, as failed when the run failed. `record` adds later
results (`judge` and `tune-prompt`: the win rate with its 95% interval, the fact recall) to the same tracker runs.

Each tracker writes where its users already tell it to: MLFLOW_TRACKING_URI (default sqlite:///<project>/mlflow.db),
MLFLOW_EXPERIMENT_NAME and WANDB_PROJECT (default: the project folder's name, also Trackio's project), WANDB_MODE
(`offline` keeps W&B on disk), WANDB_DIR (default: the project folder), TRACKIO_DIR; TensorBoard's event files go
to runs/<id>/tensorboard/. Keys (WANDB_API_KEY ...) are read by the trackers from the environment only.

A tracker is one class with `start` (its run for training, and the transformers callback writing into it) and
`write` (params and metrics into an existing run), registered in `TRACKERS`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from underdog.errors import ConfigError
from underdog.layout import MANIFEST_FILE, Layout
from underdog.project import Project

Ref = dict[str, str]  # how a tracker finds its run again (stored in the run's manifest)


@dataclass(frozen=True)
class Target:
    """An underdog run as the trackers name it."""

    root: Path  # the project folder
    run_id: str

    @property
    def experiment(self) -> str:
        return self.root.resolve().name


class Tracker(Protocol):
    name: str
    module: str  # what it imports
    package: str  # the PyPI package that has it

    def start(self, target: Target, ref: Ref | None) -> tuple[Ref, Any]:
        """Open (or reopen, from `ref`) this tracker's run for training; return its ref and the transformers
        callback that logs the training into it."""
        ...

    def write(self, target: Target, ref: Ref, params: Mapping[str, str], metrics: Mapping[str, float],
              step: int | None, status: str | None) -> None:
        """Add params and metrics to the run `ref`; with `status` ("FINISHED" / "FAILED") also close it."""
        ...


class MLflow:
    name, module, package = "mlflow", "mlflow", "mlflow-skinny"

    def start(self, target: Target, ref: Ref | None) -> tuple[Ref, Any]:
        import mlflow
        from transformers.integrations import MLflowCallback

        mlflow.set_tracking_uri(ref["tracking_uri"] if ref else self._uri(target))
        if ref:
            run = mlflow.start_run(run_id=ref["run_id"])
        else:
            mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME") or target.experiment)
            run = mlflow.start_run(run_name=target.run_id)
        # the callback logs into the active run and leaves it open: `write` closes it
        return {"run_id": run.info.run_id, "tracking_uri": mlflow.get_tracking_uri()}, MLflowCallback()

    def write(self, target: Target, ref: Ref, params: Mapping[str, str], metrics: Mapping[str, float],
              step: int | None, status: str | None) -> None:
        import mlflow

        client = mlflow.MlflowClient(ref["tracking_uri"])
        now = int(time.time() * 1000)
        client.log_batch(ref["run_id"], params=[mlflow.entities.Param(k, v) for k, v in params.items()],
                         metrics=[mlflow.entities.Metric(k, v, now, step or 0) for k, v in metrics.items()])
        if status:
            active = mlflow.active_run()
            if active and active.info.run_id == ref["run_id"]:
                mlflow.end_run(status)
            else:
                client.set_terminated(ref["run_id"], status)

    @staticmethod
    def _uri(target: Target) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(target.root / 'mlflow.db').resolve()}"


class WandB:
    name, module, package = "wandb", "wandb", "wandb"

    def start(self, target: Target, ref: Ref | None) -> tuple[Ref, Any]:
        from transformers.integrations import WandbCallback

        run = self._init(target, ref)  # the callback sees an active run and logs into it
        return {"id": run.id, "project": run.project, "dir": str(run.settings.root_dir)}, WandbCallback()

    def write(self, target: Target, ref: Ref, params: Mapping[str, str], metrics: Mapping[str, float],
              step: int | None, status: str | None) -> None:
        import wandb

        ours = wandb.run is not None and wandb.run.id == ref["id"]
        run = wandb.run if ours else self._init(target, ref)
        run.config.update(dict(params), allow_val_change=True)
        if metrics:
            run.log(dict(metrics))
        if status or not ours:
            run.finish(exit_code=1 if status == "FAILED" else 0)

    @staticmethod
    def _init(target: Target, ref: Ref | None) -> Any:
        import wandb

        settings = wandb.Settings(silent=True, console="off")
        if ref:
            return wandb.init(project=ref["project"], id=ref["id"], dir=ref["dir"], resume="allow", settings=settings)
        return wandb.init(project=os.environ.get("WANDB_PROJECT") or target.experiment, name=target.run_id,
                          dir=os.environ.get("WANDB_DIR") or str(target.root), settings=settings)


class TensorBoard:
    name, module, package = "tensorboard", "tensorboard", "tensorboard"

    def start(self, target: Target, ref: Ref | None) -> tuple[Ref, Any]:
        from torch.utils.tensorboard import SummaryWriter
        from transformers.integrations import TensorBoardCallback

        ref = ref or {"log_dir": str(Layout("").run_dir(target.run_id) / "tensorboard")}  # relative to the project
        return ref, TensorBoardCallback(SummaryWriter(log_dir=str(target.root / ref["log_dir"])))

    def write(self, target: Target, ref: Ref, params: Mapping[str, str], metrics: Mapping[str, float],
              step: int | None, status: str | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        with contextlib.closing(SummaryWriter(log_dir=str(target.root / ref["log_dir"]))) as writer:
            for key, value in params.items():
                writer.add_text(key, value, step or 0)
            for key, value in metrics.items():
                writer.add_scalar(key, value, step or 0)


class Trackio:
    name, module, package = "trackio", "trackio", "trackio"

    def start(self, target: Target, ref: Ref | None) -> tuple[Ref, Any]:
        from transformers.integrations import TrackioCallback

        # the callback opens the run named by the Trainer's `project` / `run_name` (set by `attach`)
        return ref or {"project": target.experiment, "run": target.run_id}, TrackioCallback()

    def write(self, target: Target, ref: Ref, params: Mapping[str, str], metrics: Mapping[str, float],
              step: int | None, status: str | None) -> None:
        import trackio

        # a run's config is one row, replaced by each resumed run's: carry the stored one over
        stored = trackio.SQLiteStorage.get_run_config(ref["project"], ref["run"]) or {}
        config = {**{k: v for k, v in stored.items() if not k.startswith("_")}, **params}
        with quiet():
            trackio.init(project=ref["project"], name=ref["run"], resume="allow", config=config,
                         auto_log_cpu=False, auto_log_gpu=False)
            trackio.log(dict(metrics), step=step)
            trackio.finish()


TRACKERS: dict[str, Tracker] = {t.name: t for t in (MLflow(), WandB(), TensorBoard(), Trackio())}


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Trackio prints its progress to stdout; the library prints nothing."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def check_installed(names: list[str]) -> None:
    """One line naming what to install when a configured tracker's package is missing."""
    for name in names:
        if importlib.util.find_spec(TRACKERS[name].module) is None:
            raise ConfigError(f"train.report_to: {name} needs the package {TRACKERS[name].package}: "
                              "pip install 'underdog[trackers]'")


_attached: dict[str, list[str]] = {}  # run id -> the trackers this process opened for it (closed by `finish`)


def attach(trainer: Any, project: Project, manifest: Any) -> None:
    """Open the run's tracker runs (`train.report_to`; reopened on resume), name them in `manifest.trackers`,
    and add each tracker's transformers callback to `trainer`. Rank 0 only (`RANK`, as `accelerate launch` sets)."""
    names = list(manifest.hyperparameters.get("report_to") or [])
    if not names or int(os.environ.get("RANK", "0")) != 0:
        return
    check_installed(names)
    target = Target(project.root, manifest.id)
    trainer.args.run_name, trainer.args.project = manifest.id, target.experiment  # read by W&B's and Trackio's
    for name in names:
        ref, callback = TRACKERS[name].start(target, manifest.trackers.get(name))
        manifest.trackers[name] = ref
        trainer.add_callback(callback)
    _attached[manifest.id] = names


def finish(project: Project, manifest: Any) -> None:
    """Add the run's hyperparameters, dataset and final metrics to the tracker runs `attach` opened, and close
    them (as failed unless the run is done). Nothing when none was attached in this process."""
    names = _attached.pop(manifest.id, [])
    done = manifest.status == "done"
    params = run_params(manifest) if done else {}
    metrics = final_metrics(manifest) if done else {}
    for name in names:
        with noted(project, name):
            TRACKERS[name].write(Target(project.root, manifest.id), manifest.trackers[name], params, metrics,
                                 manifest.metrics.get("steps"), "FINISHED" if done else "FAILED")


def run_params(manifest: Any) -> dict[str, str]:
    """The run's identity as tracker params: dataset version and hash, base model, hyperparameters."""
    params = {f"underdog/{key}": value if isinstance(value, str) else json.dumps(value)
              for key, value in manifest.hyperparameters.items()}
    # after the hyperparameters: `train.dataset` (unset: the newest) is not always the version trained on
    return {**params, "underdog/run": manifest.id, "underdog/dataset": manifest.dataset,
            "underdog/dataset_sha256": manifest.dataset_sha256 or "", "underdog/base_model": manifest.base_model}


def final_metrics(manifest: Any) -> dict[str, float]:
    """The run's numeric final metrics (losses, steps, tokens/s ...) and its overfit flag, as `final/...`."""
    metrics = {f"final/{k}": float(v) for k, v in manifest.metrics.items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    return {**metrics, "final/overfit": float(bool(manifest.overfit.get("flag")))}


def record(project: Project, adapter: str | None, params: Mapping[str, str], metrics: Mapping[str, float],
           step: int) -> list[str]:
    """Add `params` and `metrics` to the tracker runs of the run whose adapter is `adapter` (a folder
    runs/<id>/adapter with the run's manifest beside it); return the trackers written to. A tracker that is not
    installed or fails is noted to the project's reporter and skipped: the result is in underdog's database."""
    manifest = Path(adapter).parent / MANIFEST_FILE if adapter else None
    if manifest is None or not manifest.is_file():
        return []
    run = json.loads(manifest.read_text())
    written = []
    for name, ref in (run.get("trackers") or {}).items():
        with noted(project, name):
            check_installed([name])
            TRACKERS[name].write(Target(project.root, run["id"]), ref, params, metrics, step, None)
            written.append(name)
    return written


@contextlib.contextmanager
def noted(project: Project, name: str) -> Iterator[None]:
    """One tracker's work: a failure becomes a note to the project's reporter, never a lost result (underdog's
    own records are already written; the tracker holds a copy)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - see above
        project.reporter.note(f"{name}: not sent to the tracker ({type(exc).__name__}: {str(exc)[:160]})")
