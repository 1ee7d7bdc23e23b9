"""Optuna search over hyperparameters (`method: optuna` in a sweep YAML).

The study lives in `runs/_sweeps/<name>/optuna.db`, so a crashed search resumes: trials left RUNNING are
re-run under the same run id (which resumes from their checkpoint), then the search asks for new ones until
`n_trials` have finished. A failed run is told to Optuna as FAIL; an overfit one scores +inf, so the search
prefers configurations that generalise.
"""

from __future__ import annotations

import math
from typing import Any

from underdog.errors import ConfigError
from underdog.project import Project
from underdog.train.runs import RunManifest, load_run, run_dir
from underdog.train.sweep import SweepConfig, run_one


def distributions(space: dict[str, Any]) -> dict[str, Any]:
    """`[choices]` -> categorical; `{low, high, log?}` -> int or float range."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, list) and spec:
            out[name] = CategoricalDistribution(spec)
        elif isinstance(spec, dict) and {"low", "high"} <= set(spec):
            low, high, log = spec["low"], spec["high"], bool(spec.get("log", False))
            is_int = isinstance(low, int) and isinstance(high, int)
            out[name] = (IntDistribution if is_int else FloatDistribution)(low, high, log=log)
        else:
            raise ConfigError(f"search.space.{name}: expected a list of choices or {{low, high, log?}}")
    return out


def score(manifest: RunManifest, metric: str) -> float | None:
    """The value Optuna minimises (None for a failed run)."""
    if manifest.status != "done" or manifest.metrics.get(metric) is None:
        return None
    return math.inf if manifest.overfit.get("flag") else float(manifest.metrics[metric])


def run_search(project: Project, sweep: SweepConfig, default_dataset: str | None, *,
               retry_failed: bool = False) -> list[RunManifest]:
    import optuna
    from optuna.trial import TrialState

    assert sweep.search is not None
    folder = project.runs_dir / "_sweeps" / sweep.name
    folder.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=sweep.name, storage=f"sqlite:///{folder / 'optuna.db'}",
                                direction="minimize", load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=0))
    space = distributions(sweep.search.space)
    dataset = (sweep.datasets or [default_dataset])[0]
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        _finish(project, study, sweep, stale.number, stale.params, dataset)
    finished = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
    while len(study.get_trials(deepcopy=False, states=finished)) < sweep.search.n_trials:
        trial = study.ask(space)
        _finish(project, study, sweep, trial.number, trial.params, dataset)
    ids = [f"{sweep.name}-{t.number:03d}" for t in study.get_trials(deepcopy=False)]
    return [load_run(project.root, i) for i in ids if (run_dir(project.root, i) / "manifest.json").exists()]


def _finish(project: Project, study: Any, sweep: SweepConfig, number: int, params: dict[str, Any],
            dataset: str | None) -> None:
    from optuna.trial import TrialState

    overrides = {**sweep.fixed, **params}
    item = {"id": f"{sweep.name}-{number:03d}", "dataset": params.get("dataset", dataset), "overrides": overrides}
    item["overrides"].pop("dataset", None)
    manifest = run_one(project, sweep.name, item)
    value = score(manifest, sweep.search.metric if sweep.search else "eval_loss")
    if value is None:
        study.tell(number, state=TrialState.FAIL)
    else:
        study.tell(number, value)
