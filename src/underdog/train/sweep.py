"""Sweeps: many LoRA runs over hyperparameters and dataset versions, queued on the available devices.

    underdog sweep sweep.yaml

    # sweep.yaml
    name: r-and-epochs
    datasets: [v1, v2]              # dataset versions to cross with every config (default: train.dataset / newest)
    fixed: {learning_rate: 2e-4}    # applied to every run
    method: grid                    # grid | list | optuna
    grid: {epoch: [3, 4], lora_r: [8, 16], lora_alpha: [16, 32]}
    # method: list
    # runs: [{lora_r: 8}, {lora_r: 256, lora_alpha: 128}]
    # method: optuna
    # search: {n_trials: 12, metric: eval_loss, space: {learning_rate: {low: 1e-5, high: 1e-3, log: true},
    #                                                    lora_r: [8, 16, 32]}}
    max_concurrent: 2               # at most this many runs at once (one per GPU; CPU runs one at a time)
    executor: local                 # local | accelerate | ray | sagemaker (see `underdog.train.executors`)
    processes: 2                    # executor accelerate: processes (GPUs) per run
    port: 29501                     # executor accelerate: rendezvous port (default 29500)

Run ids are `<name>-<nnn>`, so running the same sweep again skips finished runs, resumes interrupted ones from
their checkpoint and keeps failed ones (with their reason) unless `--retry-failed`. Every run's memory estimate is
checked before launch: a run that fits no device is recorded as failed with the estimate and never started.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from underdog.config import describe_validation_error
from underdog.errors import ConfigError
from underdog.project import Project
from underdog.textfile import read_user_text
from underdog.train.executors import EXECUTORS, Resources, RunPlan, get_executor
from underdog.train.lora import resolve_dataset
from underdog.train.runs import RunManifest, load_run, run_dir
from underdog.train.search import SearchSpace, run_search


class SweepConfig(BaseModel):
    """A sweep YAML (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    datasets: list[str] = []
    fixed: dict[str, Any] = {}
    method: Literal["grid", "list", "optuna"] = "grid"
    grid: dict[str, list[Any]] = {}
    runs: list[dict[str, Any]] = []
    search: SearchSpace | None = None
    max_concurrent: int | None = Field(None, ge=1)
    executor: str = "local"
    processes: int = Field(1, ge=1)
    port: int | None = Field(None, ge=1, le=65535)

    @field_validator("executor")
    @classmethod
    def _known_executor(cls, name: str) -> str:
        if name not in EXECUTORS:
            raise ValueError(f"expected one of {', '.join(EXECUTORS)}")
        return name

    @model_validator(mode="after")
    def _method_has_body(self) -> SweepConfig:
        body = {"grid": self.grid, "list": self.runs, "optuna": self.search}[self.method]
        if not body:
            key = {"grid": "grid", "list": "runs", "optuna": "search"}[self.method]
            raise ValueError(f"method {self.method!r} needs a {key!r} section")
        if self.method == "optuna" and self.executor == "sagemaker":
            raise ValueError("method 'optuna' needs each trial's loss when it ends: executor 'sagemaker' cannot")
        return self

    def resources(self, slots: list[str | None] | None = None) -> Resources:
        """What the sweep's executor may use."""
        return Resources(slots=slots, max_concurrent=self.max_concurrent, processes=self.processes, port=self.port)


def load_sweep(path: Path) -> SweepConfig:
    """Parse and validate a sweep YAML (ConfigError naming the file, line and key)."""
    if not path.exists():
        raise ConfigError(f"{path}: not found")
    text = read_user_text(path, error=ConfigError, option=None)
    try:
        data = yaml.safe_load(text) or {}
        return SweepConfig.model_validate(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, path, text)) from None


def plan(sweep: SweepConfig, default_dataset: str | None) -> list[RunPlan]:
    """The runs of a grid or list sweep, in a stable order (run ids `<name>-<nnn>`)."""
    configs = ([dict(zip(sweep.grid, values, strict=True)) for values in itertools.product(*sweep.grid.values())]
               if sweep.method == "grid" else [dict(r) for r in sweep.runs])
    datasets = sweep.datasets or [default_dataset]
    out: list[RunPlan] = []
    for config in configs:
        for dataset in ([config.pop("dataset")] if "dataset" in config else datasets):
            out.append(RunPlan(dataset=dataset, overrides={**sweep.fixed, **config},
                               run_id=f"{sweep.name}-{len(out):03d}", sweep=sweep.name))
    return out


def run_sweep(project: Project, sweep_path: str | Path, *, retry_failed: bool = False,
              slots: list[str | None] | None = None) -> list[RunManifest]:
    """Run or resume a sweep and return the manifests of its runs (failed ones included, with their reason).

    `slots` overrides the local devices runs are queued on (default: one per GPU, else one CPU slot)."""
    sweep = load_sweep(Path(sweep_path))
    default_dataset = project.config.train.dataset
    if not sweep.datasets and default_dataset is None:
        default_dataset = resolve_dataset(project.root)
    executor = get_executor(sweep.executor, project, sweep.resources(slots))
    if sweep.method == "optuna":
        assert sweep.search is not None  # the validator requires it
        dataset = (sweep.datasets or [default_dataset])[0]
        return run_search(project, sweep.name, sweep.search, executor, dataset=dataset, fixed=sweep.fixed)
    plans = plan(sweep, default_dataset)
    executor.submit([p for p in plans if needs_run(project.root, p.run_id or "", retry_failed)])
    return [load_run(project.root, p.run_id) for p in plans
            if p.run_id and (run_dir(project.root, p.run_id) / "manifest.json").exists()]


def needs_run(root: Path, run_id: str, retry_failed: bool) -> bool:
    """Whether a sweep run is to (re)start: new, left running by a crash, or failed with `retry_failed`."""
    if not (run_dir(root, run_id) / "manifest.json").exists():
        return True
    status = load_run(root, run_id).status
    return status == "running" or (status == "failed" and retry_failed)
