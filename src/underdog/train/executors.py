"""Where training runs execute: one `Executor` protocol, one registry, used by `underdog train`, `underdog sweep`
and the Optuna search alike.

    executor = get_executor("local", project)                  # local | accelerate | ray | sagemaker
    [manifest] = executor.submit([RunPlan(dataset="v1", overrides={"epoch": 3})])
    manifest = executor.status(manifest)                         # SageMaker: polls the job; others: the manifest

`submit` runs (or hands off) the planned runs and returns their manifests: a run that fails is recorded in its
manifest with the reason and the others go on; a bad configuration (no run started) is raised. Each executor
decides how runs share the machine: `local` queues them on its device slots (in this process with one slot,
one `python -m underdog.train.launch` process per slot with several), `accelerate` runs each over `processes`
processes, `ray` makes them Ray Tune trials, `sagemaker` submits one JumpStart job each.

Adding an executor: a class with `__init__(project, resources)`, `submit(plans)` and `status(run)`, listed in
`EXECUTORS` by its import path (so optional dependencies load only when it is chosen).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from underdog.errors import ConfigError, UnderdogError
from underdog.project import Project
from underdog.train.devices import launch_precision, slot_visible_devices
from underdog.train.launch import accelerate_command, launch_command
from underdog.train.lora import fail_run, new_run_id, resolve_config, resolve_dataset, start_manifest, train
from underdog.train.runs import RunManifest, has_run, load_run


@dataclass(frozen=True)
class RunPlan:
    """One run to execute: its dataset, hyperparameter overrides on the project's `train:` section, run id
    (an unfinished existing run resumes), sweep, and the device slot it is pinned to (None: `train.device`)."""

    dataset: str | None = None
    overrides: dict[str, Any] | list[str] = field(default_factory=dict)
    run_id: str | None = None
    sweep: str | None = None
    device: str | None = None


@dataclass(frozen=True)
class Resources:
    """What an executor may use: local device slots (default: one per GPU up to `max_concurrent`, else one CPU
    slot), runs at once, and processes per run (accelerate; `fsdp` shards instead of DDP; `port`: the rendezvous
    port, default accelerate's 29500)."""

    slots: list[str | None] | None = None
    max_concurrent: int | None = None
    processes: int = 1
    fsdp: bool = False
    port: int | None = None


@runtime_checkable
class Executor(Protocol):
    """Runs planned training runs somewhere and reports on them."""

    def submit(self, plans: Sequence[RunPlan]) -> list[RunManifest]:
        """Run (or hand off) the plans; failures are recorded in the runs' manifests, not raised."""
        ...

    def status(self, run: RunManifest) -> RunManifest:
        """The run's current manifest (a remote executor asks its service first)."""
        ...


EXECUTORS: dict[str, str] = {
    "local": "underdog.train.executors:LocalExecutor",
    "accelerate": "underdog.train.executors:AccelerateExecutor",
    "ray": "underdog.train.ray_executor:RayExecutor",
    "sagemaker": "underdog.train.sagemaker:SageMakerExecutor",
}


def get_executor(name: str, project: Project, resources: Resources | None = None) -> Executor:
    """The executor registered as `name`, for this project."""
    if name not in EXECUTORS:
        raise ConfigError(f"executor {name!r}: expected one of {', '.join(EXECUTORS)}")
    module, cls = EXECUTORS[name].split(":")
    return getattr(importlib.import_module(module), cls)(project, resources or Resources())


def run_in_process(project: Project, plan: RunPlan) -> RunManifest:
    """Train one planned run in this process; a failed run's manifest is returned (its reason recorded)."""
    overrides = plan.overrides
    if plan.device and isinstance(overrides, dict):
        overrides = {**overrides, "device": overrides.get("device", plan.device)}
    elif plan.device:
        overrides = [f"device={plan.device}", *overrides]  # a device among the overrides wins
    try:
        return train(project, plan.dataset, overrides, run_id=plan.run_id, sweep=plan.sweep)
    except UnderdogError:
        if has_run(project.root, plan.run_id):
            return load_run(project.root, plan.run_id)
        raise  # nothing started: a configuration error


def record_exit(project: Project, plan: RunPlan, code: int) -> RunManifest | None:
    """After a training process exited: its manifest; a failure when it died without recording one (the OOM
    killer, a signal)."""
    assert plan.run_id is not None
    started = has_run(project.root, plan.run_id)
    if code != 0 and (not started or load_run(project.root, plan.run_id).status == "running"):
        manifest = start_manifest(project, plan.dataset, plan.overrides, plan.run_id, plan.sweep)
        fail_run(project, manifest, f"the training process exited with code {code} (killed: out of memory?)")
    return load_run(project.root, plan.run_id) if has_run(project.root, plan.run_id) else None


def devices(max_concurrent: int) -> list[str | None]:
    """One slot per GPU (up to `max_concurrent`); a single CPU slot when there is no GPU."""
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(min(n, max_concurrent))] or [None]


class LocalExecutor:
    """This machine: in this process with one device slot; one training process per slot with several."""

    def __init__(self, project: Project, resources: Resources) -> None:
        self.project = project
        self.slots = resources.slots or devices(resources.max_concurrent or project.config.train.max_concurrent)

    def submit(self, plans: Sequence[RunPlan]) -> list[RunManifest]:
        if len(self.slots) == 1:
            return [run_in_process(self.project, replace(p, device=p.device or self.slots[0])) for p in plans]
        queue = [named(self.project, p) for p in plans]  # each process needs to know its run id
        plans = list(queue)
        with ThreadPoolExecutor(len(self.slots)) as pool:
            for future in [pool.submit(self._drain, queue, slot or "cpu") for slot in self.slots]:
                future.result()
        return [load_run(self.project.root, p.run_id) for p in plans
                if has_run(self.project.root, p.run_id)]

    def status(self, run: RunManifest) -> RunManifest:
        return load_run(self.project.root, run.id)

    def _drain(self, queue: list[RunPlan], device: str) -> None:
        while queue:
            try:
                plan = queue.pop(0)
            except IndexError:
                return
            self.run_in_subprocess(plan, device)

    def run_in_subprocess(self, plan: RunPlan, device: str) -> RunManifest | None:
        """One run in its own `python -m underdog.train.launch` process, a GPU slot pinned with
        `CUDA_VISIBLE_DEVICES` (slot N = the N-th GPU this process sees)."""
        env = dict(os.environ)
        if device.startswith("cuda"):
            env["CUDA_VISIBLE_DEVICES"] = slot_visible_devices(device)
        overrides = [*override_args(plan.overrides), f"device={'cuda' if device.startswith('cuda') else 'cpu'}"]
        cmd = launch_command(self.project.root, plan.dataset or "", plan.run_id or "", overrides, sweep=plan.sweep)
        code = subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL).returncode
        return record_exit(self.project, plan, code)


class AccelerateExecutor:
    """Each run over `processes` processes with `accelerate launch` (DDP, or FSDP with `fsdp`), one after another."""

    def __init__(self, project: Project, resources: Resources) -> None:
        self.project, self.resources = project, resources

    def submit(self, plans: Sequence[RunPlan]) -> list[RunManifest]:
        out = []
        for plan in plans:
            manifest = self._launch(plan)
            if manifest is not None:
                out.append(manifest)
        return out

    def status(self, run: RunManifest) -> RunManifest:
        return load_run(self.project.root, run.id)

    def _launch(self, plan: RunPlan) -> RunManifest | None:
        cfg = resolve_config(self.project, plan.overrides)
        plan = named(self.project, plan)
        args = (self.project.root, plan.dataset or "", plan.run_id or "", override_args(plan.overrides))
        cmd = accelerate_command(*args,
                                 processes=self.resources.processes, fsdp=self.resources.fsdp,
                                 port=self.resources.port, mixed_precision=launch_precision(cfg.precision),
                                 sweep=plan.sweep)
        return record_exit(self.project, plan, subprocess.run(cmd, check=False).returncode)


def named(project: Project, plan: RunPlan) -> RunPlan:
    """The plan with its dataset version and run id filled in (a new run: `<time>-<dataset>-<random>`)."""
    if plan.run_id and plan.dataset:
        return plan
    dataset = resolve_dataset(project.root, plan.dataset or resolve_config(project, plan.overrides).dataset)
    return replace(plan, dataset=dataset, run_id=plan.run_id or new_run_id(dataset))


def override_args(overrides: dict[str, Any] | list[str]) -> list[str]:
    """Overrides as `key=value` arguments (JSON values, which YAML reads back)."""
    if isinstance(overrides, list):
        return list(overrides)
    return [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
