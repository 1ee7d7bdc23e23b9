"""Optuna search over hyperparameters (`method: optuna` in a sweep YAML).

The study lives in `runs/_sweeps/<name>/optuna.db`, so a crashed search resumes: trials left RUNNING are
re-run under the same run id (which resumes from their checkpoint), then the search asks for new ones until
`n_trials` have finished. A failed run is told to Optuna as FAIL; an overfit one scores +inf, so the search
prefers configurations that generalise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from underdog.errors import ConfigError
from underdog.project import Project
from underdog.train.executors import Executor, RunPlan
from underdog.train.runs import RunManifest, load_run, run_dir


class SearchSpace(BaseModel):
    """The `search:` section of an optuna sweep."""

    model_config = ConfigDict(extra="forbid")
    n_trials: int = Field(10, ge=1)
    metric: str = "eval_loss"  # minimised; a failed or overfit run scores +inf
    space: dict[str, Any] = {}  # name: [choices] | {low, high, log?}

    @field_validator("space")
    @classmethod
    def _valid_dimensions(cls, space: dict[str, Any]) -> dict[str, Any]:
        for name, spec in space.items():
            if problem := dimension_problem(spec):
                raise ValueError(f"{name}: {problem}")
        return space


def dimension_problem(spec: Any) -> str | None:
    """What is wrong with one search dimension, `[choices]` or `{low, high, log?}` (None: nothing), in words."""
    if isinstance(spec, list):
        return None if spec else "expected a list of choices or {low, high, log?} (got an empty list)"
    if not isinstance(spec, dict) or not {"low", "high"} <= set(spec):
        return "expected a list of choices or {low, high, log?}"
    if extra := sorted(set(spec) - {"low", "high", "log"}):
        return f"unknown key {', '.join(map(repr, extra))} (expected {{low, high, log?}})"
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high)):
        return f"low and high must be numbers (got {low!r} and {high!r})"
    if not isinstance(log, bool):
        return f"log must be true or false (got {log!r})"
    if low > high:
        return f"low ({low:g}) is above high ({high:g})"
    if log and low <= 0:
        return f"log: true needs low > 0 (got {low:g})"
    return None


def distributions(space: dict[str, Any], key: str = "search.space") -> dict[str, Any]:
    """`[choices]` -> categorical; `{low, high, log?}` -> int or float range (ConfigError naming `key.<name>`)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for name, spec in space.items():
        if problem := dimension_problem(spec):
            raise ConfigError(f"{key}.{name}: {problem}")
        if isinstance(spec, list):
            out[name] = CategoricalDistribution(spec)
        else:
            low, high, log = spec["low"], spec["high"], spec.get("log", False)
            is_int = isinstance(low, int) and isinstance(high, int)
            out[name] = (IntDistribution if is_int else FloatDistribution)(low, high, log=log)
    return out


def score(manifest: RunManifest, metric: str) -> float | None:
    """The value Optuna minimises (None for a failed run)."""
    if manifest.status != "done" or manifest.metrics.get(metric) is None:
        return None
    return math.inf if manifest.overfit.get("flag") else float(manifest.metrics[metric])


def run_search(project: Project, name: str, search: SearchSpace, executor: Executor, *, dataset: str | None,
               fixed: dict[str, Any]) -> list[RunManifest]:
    """Ask Optuna for trials until `n_trials` have finished, each run by `executor` one after another."""
    import optuna
    from optuna.trial import TrialState

    folder = project.runs_dir / "_sweeps" / name
    folder.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{folder / 'optuna.db'}",
                                direction="minimize", load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=0))
    space = distributions(search.space)
    trial = Trial(executor, study, name, search.metric, fixed, dataset)
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial.finish(stale.number, stale.params)
    finished = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
    while len(study.get_trials(deepcopy=False, states=finished)) < search.n_trials:
        asked = study.ask(space)
        trial.finish(asked.number, asked.params)
    ids = [f"{name}-{t.number:03d}" for t in study.get_trials(deepcopy=False)]
    return [load_run(project.root, i) for i in ids if (run_dir(project.root, i) / "manifest.json").exists()]


@dataclass(frozen=True)
class Trial:
    """Runs one Optuna trial as run `<name>-<number>` and tells the study its score."""

    executor: Executor
    study: Any
    name: str
    metric: str
    fixed: dict[str, Any]
    dataset: str | None

    def finish(self, number: int, params: dict[str, Any]) -> None:
        from optuna.trial import TrialState

        overrides = {k: v for k, v in {**self.fixed, **params}.items() if k != "dataset"}
        plan = RunPlan(dataset=params.get("dataset", self.dataset), overrides=overrides,
                       run_id=f"{self.name}-{number:03d}", sweep=self.name)
        manifests = self.executor.submit([plan])
        value = score(manifests[0], self.metric) if manifests else None
        if value is None:
            self.study.tell(number, state=TrialState.FAIL)
        else:
            self.study.tell(number, value)
