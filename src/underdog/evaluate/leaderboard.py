"""The leaderboard: every training run with its data, hyperparameters, losses, overfit flag and win rate.

    entries = leaderboard(project)           # runs + judged baselines, best first
    best = recommend(entries)                # the best finished run that is not flagged as overfit

A run's win rate is its latest judging (`judge_results`) against the reference on the eval set. Candidates
that are not runs (the base student, an API model, a tuned prompt) appear as baselines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from underdog.evaluate.evalset import list_evalsets, resolve_evalset
from underdog.project import Project

HYPERPARAMETERS = ("epoch", "learning_rate", "lora_r", "lora_alpha", "target_modules")


@dataclass
class Entry:
    name: str
    kind: str  # "run" or "baseline"
    status: str = "judged"
    dataset: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    overfit: bool = False
    overfit_reason: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None  # the judge_results row

    @property
    def win_rate(self) -> float | None:
        return self.result["win_rate"] if self.result else None

    @property
    def ci(self) -> tuple[float, float] | None:
        return (self.result["ci_low"], self.result["ci_high"]) if self.result else None


def load_runs(project: Project) -> list[dict[str, Any]]:
    """Every run manifest under runs/, oldest first (unreadable ones are skipped)."""
    manifests = []
    for path in sorted(project.runs_dir.glob("*/manifest.json")):
        try:
            manifests.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            continue
    return sorted(manifests, key=lambda m: m.get("created") or 0)


def latest_results(project: Project, reference: str, evalset: str) -> dict[str, dict[str, Any]]:
    """The newest judging of each candidate against `reference` on `evalset`."""
    rows = project.store.query("SELECT * FROM judge_results WHERE reference = ? AND evalset = ? ORDER BY id",
                               (reference, evalset))
    return {row["candidate"]: dict(row) for row in rows}


def leaderboard(project: Project, reference: str | None = None, evalset: str | None = None) -> list[Entry]:
    """Runs and judged baselines, sorted by win rate (unjudged last)."""
    reference = reference or project.config.evaluate.reference
    ev = resolve_evalset(project, evalset) if (evalset or list_evalsets(project)) else None
    results = latest_results(project, reference, ev) if ev else {}
    entries = [_run_entry(m, results.pop(m.get("id"), None)) for m in load_runs(project)]
    entries += [Entry(name, "baseline", result=row) for name, row in results.items()]
    return sorted(entries, key=lambda e: (e.win_rate is None, -(e.win_rate or 0), -(e.ci or (0, 0))[0]))


def _run_entry(manifest: dict[str, Any], result: dict[str, Any] | None) -> Entry:
    overfit = manifest.get("overfit") or {}
    return Entry(manifest.get("id", "?"), "run", manifest.get("status", "?"), manifest.get("dataset"),
                 manifest.get("hyperparameters") or {}, manifest.get("metrics") or {}, bool(overfit.get("flag")),
                 overfit.get("reason"), manifest.get("history") or [], result)


def recommend(entries: list[Entry]) -> Entry | None:
    """The finished, judged run with the best win rate (then lower interval bound) that is not overfit."""
    ok = [e for e in entries if e.kind == "run" and e.status == "done" and not e.overfit and e.result]
    return max(ok, key=lambda e: (e.win_rate, e.ci[0]), default=None)
