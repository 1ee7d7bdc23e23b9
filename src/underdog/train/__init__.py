"""Training: LoRA SFT runs, overfitting diagnosis, merging, sweeps and their executors.

    from underdog.train import train, list_runs, load_run, run_sweep
    manifest = train(project, "v1", ["epoch=3", "lora_r=16"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from underdog.project import Project
    from underdog.train.runs import RunManifest


def train(project: Project, dataset: str | None = None, overrides: dict[str, Any] | list[str] | None = None,
          **kwargs: Any) -> RunManifest:
    """Train one LoRA run (see `underdog.train.lora.train`)."""
    from underdog.train.lora import train as _train

    return _train(project, dataset, overrides, **kwargs)


def list_runs(project: Project) -> list[RunManifest]:
    """Every run of the project, oldest first."""
    from underdog.train.runs import list_runs as _list

    return _list(project.root)


def load_run(project: Project, run_id: str) -> RunManifest:
    """The manifest of one run."""
    from underdog.train.runs import load_run as _load

    return _load(project.root, run_id)


def run_sweep(project: Project, sweep_path: str, **kwargs: Any) -> list[RunManifest]:
    """Run (or resume) the sweep described by a sweep YAML (see `underdog.train.sweep`)."""
    from underdog.train.sweep import run_sweep as _sweep

    return _sweep(project, sweep_path, **kwargs)


def merge_run(project: Project, run_id: str, out: str | None = None, dtype: str = "auto") -> str:
    """Merged full weights of a run, for serving elsewhere (see `underdog.train.merge`)."""
    from underdog.train.merge import merge_run as _merge

    return str(_merge(project, run_id, out, dtype))
