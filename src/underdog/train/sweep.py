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
    executor: local                 # local | ray | sagemaker (one JumpStart training job per run)

Run ids are `<name>-<nnn>`, so running the same sweep again skips finished runs, resumes interrupted ones from
their checkpoint and keeps failed ones (with their reason) unless `--retry-failed`. Every run's memory estimate is
checked before launch: a run that fits no device is recorded as failed with the estimate and never started.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from underdog.config import describe_validation_error
from underdog.errors import ConfigError, UnderdogError
from underdog.project import Project
from underdog.textfile import read_user_text
from underdog.train.runs import RunManifest, load_run, run_dir


class SearchSpace(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_trials: int = Field(10, ge=1)
    metric: str = "eval_loss"  # minimised; a failed or overfit run scores +inf
    space: dict[str, Any] = {}  # name: [choices] | {low, high, log?}


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
    executor: Literal["local", "ray", "sagemaker"] = "local"

    @model_validator(mode="after")
    def _method_has_body(self) -> SweepConfig:
        body = {"grid": self.grid, "list": self.runs, "optuna": self.search}[self.method]
        if not body:
            key = {"grid": "grid", "list": "runs", "optuna": "search"}[self.method]
            raise ValueError(f"method {self.method!r} needs a {key!r} section")
        return self


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


def plan(sweep: SweepConfig, default_dataset: str | None) -> list[dict[str, Any]]:
    """The runs of a grid or list sweep: `{"id", "dataset", "overrides"}` each, in a stable order."""
    configs = ([dict(zip(sweep.grid, values, strict=True)) for values in itertools.product(*sweep.grid.values())]
               if sweep.method == "grid" else [dict(r) for r in sweep.runs])
    datasets = sweep.datasets or [default_dataset]
    out = []
    for config in configs:
        for dataset in ([config.pop("dataset")] if "dataset" in config else datasets):
            out.append({"id": f"{sweep.name}-{len(out):03d}", "dataset": dataset,
                        "overrides": {**sweep.fixed, **config}})
    return out


def devices(max_concurrent: int) -> list[str | None]:
    """One slot per GPU (up to `max_concurrent`); a single CPU slot when there is no GPU."""
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(min(n, max_concurrent))] or [None]


def run_sweep(project: Project, sweep_path: str | Path, *, retry_failed: bool = False,
              slots: list[str | None] | None = None) -> list[RunManifest]:
    """Run or resume a sweep and return the manifests of its runs (failed ones included, with their reason).

    `slots` overrides the local devices runs are queued on (default: one per GPU, else one CPU slot)."""
    sweep = load_sweep(Path(sweep_path))
    default_dataset = project.config.train.dataset
    if not sweep.datasets and default_dataset is None:
        from underdog.train.lora import resolve_dataset

        default_dataset = resolve_dataset(project.root)
    if sweep.method == "optuna":
        from underdog.train.search import run_search

        return run_search(project, sweep, default_dataset, retry_failed=retry_failed)
    planned = [p for p in plan(sweep, default_dataset) if _needs_run(project.root, p["id"], retry_failed)]
    if sweep.executor == "ray":
        from underdog.train.ray_executor import run_with_ray

        run_with_ray(project, sweep, planned)
    elif sweep.executor == "sagemaker":
        from underdog.train.sagemaker import submit

        for item in planned:  # one JumpStart training job each (polled, not resubmitted, when submitted already)
            try:
                submit(project, item["dataset"], item["overrides"], run_id=item["id"])
            except UnderdogError:
                continue  # recorded in the run's manifest; the sweep goes on
    else:
        run_local(project, sweep, planned, slots)
    return [load_run(project.root, p["id"]) for p in plan(sweep, default_dataset)
            if (run_dir(project.root, p["id"]) / "manifest.json").exists()]


def _needs_run(root: Path, run_id: str, retry_failed: bool) -> bool:
    if not (run_dir(root, run_id) / "manifest.json").exists():
        return True
    status = load_run(root, run_id).status
    return status == "running" or (status == "failed" and retry_failed)


def run_local(project: Project, sweep: SweepConfig, planned: list[dict[str, Any]],
              slots: list[str | None] | None = None) -> None:
    """Queue the runs on the local devices: in this process on one slot, one subprocess per slot on several."""
    slots = slots or devices(sweep.max_concurrent or project.config.train.max_concurrent)
    if len(slots) == 1:
        for item in planned:
            run_one(project, sweep.name, item, slots[0])
        return
    queue = list(planned)
    with ThreadPoolExecutor(len(slots)) as pool:
        for future in [pool.submit(_drain, project, sweep.name, queue, slot or "cpu") for slot in slots]:
            future.result()


def _drain(project: Project, sweep_name: str, queue: list[dict[str, Any]], device: str) -> None:
    while queue:
        try:
            item = queue.pop(0)
        except IndexError:
            return
        _run_subprocess(project, sweep_name, item, device)


def run_one(project: Project, sweep_name: str, item: dict[str, Any], device: str | None = None) -> RunManifest:
    """Train one planned run in this process; a failure is recorded in its manifest and the sweep goes on."""
    from underdog.train.lora import train

    overrides = dict(item["overrides"])
    if device:
        overrides.setdefault("device", device)
    try:
        return train(project, item["dataset"], overrides, run_id=item["id"], sweep=sweep_name)
    except UnderdogError:
        return load_run(project.root, item["id"])


def _run_subprocess(project: Project, sweep_name: str, item: dict[str, Any], device: str) -> None:
    """One run in its own process (a GPU slot is pinned with `CUDA_VISIBLE_DEVICES`). Failures land in its
    manifest; a process killed from outside (the OOM killer) is recorded with its exit code."""
    overrides = [f"{k}={json.dumps(v)}" for k, v in item["overrides"].items()]  # JSON values are YAML
    env = dict(os.environ)
    if device.startswith("cuda"):
        from underdog.train.devices import slot_visible_devices

        env["CUDA_VISIBLE_DEVICES"] = slot_visible_devices(device)  # slot N = the N-th GPU this process sees
    cmd = [sys.executable, "-c", "from underdog.cli import main; main()", "-C", str(project.root), "train",
           "--dataset", item["dataset"], "--run-id", item["id"], "--sweep", sweep_name, *overrides,
           f"device={'cuda' if device.startswith('cuda') else 'cpu'}"]
    code = subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL).returncode
    manifest_path = run_dir(project.root, item["id"]) / "manifest.json"
    if code != 0 and (not manifest_path.exists() or load_run(project.root, item["id"]).status == "running"):
        from underdog.train.lora import _fail, _start_manifest

        manifest = _start_manifest(project, item["dataset"], item["overrides"], item["id"], sweep_name)
        _fail(project, manifest, f"the training process exited with code {code} (killed: out of memory?)")
