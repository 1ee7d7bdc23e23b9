"""Sweeps across a cluster with Ray Tune (`executor: ray` in a sweep YAML; `pip install 'underdog[ray]'`).

    ray start --head                      # on the head node; `ray start --address=...` on each worker
    RAY_ADDRESS=auto underdog sweep sweep.yaml

Each planned run becomes one Ray Tune trial that calls the same `train()` recipe on whichever node Ray places it,
with one GPU per trial when the cluster has GPUs (one CPU otherwise) and at most `max_concurrent` trials at a
time. The project folder must be on a filesystem every node sees (NFS, EFS, a mounted bucket): runs write their
manifests, adapters and store rows there, exactly as local runs do, so resuming and `underdog runs` work the same.
Without RAY_ADDRESS a local Ray instance is started (what the tests use).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from underdog.errors import UnderdogError
from underdog.project import Project
from underdog.train.executors import Resources, RunPlan, run_in_process
from underdog.train.runs import RunManifest, has_run, load_run


def _trial(config: dict[str, Any]) -> None:
    """One Ray Tune trial: train one planned run and report its final metrics."""
    from ray import tune

    plan = RunPlan(**{**config["plan"], "device": config.get("device")})
    manifest = run_in_process(Project(config["root"]), plan)
    metrics = {k: v for k, v in manifest.metrics.items() if isinstance(v, int | float)}
    tune.report({**metrics, "failed": int(manifest.status != "done"), "overfit": int(bool(manifest.overfit["flag"]))})


class RayExecutor:
    """The plans as Ray Tune trials (a grid over the planned list), at most `max_concurrent` at a time."""

    def __init__(self, project: Project, resources: Resources) -> None:
        self.project = project
        self.max_concurrent = resources.max_concurrent or project.config.train.max_concurrent

    def submit(self, plans: Sequence[RunPlan]) -> list[RunManifest]:
        run_with_ray(self.project, plans, self.max_concurrent, name=_sweep_name(plans))
        return [load_run(self.project.root, p.run_id) for p in plans
                if has_run(self.project.root, p.run_id)]

    def status(self, run: RunManifest) -> RunManifest:
        return load_run(self.project.root, run.id)


def _sweep_name(plans: Sequence[RunPlan]) -> str:
    return next((p.sweep for p in plans if p.sweep), "runs")


def run_with_ray(project: Project, plans: Sequence[RunPlan], max_concurrent: int, *, name: str) -> None:
    """Run the plans as Ray Tune trials (grid over the planned list)."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise UnderdogError("executor 'ray' needs Ray Tune: pip install 'underdog[ray]'") from None
    if not plans:
        return
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    trainable = tune.with_resources(_trial, {"cpu": 1, "gpu": gpus})
    space = {"root": str(project.root), "plan": tune.grid_search([asdict(p) for p in plans]),
             "device": "cuda" if gpus else None}
    tuner = tune.Tuner(
        trainable, param_space=space,
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent),
        run_config=tune.RunConfig(name=name, storage_path=str(project.runs_dir / "_sweeps" / "ray"), verbose=0),
    )
    tuner.fit()
