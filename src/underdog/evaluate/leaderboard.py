"""The leaderboard: every training run with its data, hyperparameters, losses, overfit flag and win rate.

    entries = leaderboard(project)           # runs + judged baselines, best first
    board_config(project)                    # which judge configuration the board ranks, and the others
    best = recommend(entries)                # the finished run with the best judged quality

A run's win rate is its latest judging (`judge_results`) against the reference on the eval set under one judge
configuration (`judge.jury_config`: judges, prompt version, rubric, eval set): results of different juries are
never ranked side by side. The default configuration is the configured jury's (evaluate.judges), else, when it
has judged nothing yet, the newest result's. Candidates that are not runs (the base student, an API model, a
tuned prompt) appear as baselines. Results recorded before configurations were stored have the id "unknown".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from underdog.errors import UnderdogError
from underdog.evaluate import store as tables
from underdog.evaluate.evalset import list_evalsets, resolve_evalset
from underdog.evaluate.judge import jury_config
from underdog.layout import MANIFEST_FILE
from underdog.project import Project

UNKNOWN_CONFIG = "unknown"

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

    @property
    def fact_recall(self) -> float | None:
        return self.result.get("fact_recall") if self.result else None

    def quality(self) -> tuple[float, float, float]:
        """What ranks judged entries: fact recall (grounded truth, when the eval set has facts), then the
        win rate, then the lower bound of its interval."""
        recall = self.fact_recall
        return (-1.0 if recall is None else recall, self.win_rate or 0.0, (self.ci or (0.0, 0.0))[0])


@dataclass
class BoardConfig:
    """The judge configuration a leaderboard ranks, and the others recorded for the same reference/eval set."""

    config_id: str | None
    config: dict[str, Any] | None
    configured: bool  # whether it is the configured jury's (else the newest result's, or one picked)
    picked: bool = False  # asked for by judges (-j) or configuration id (--config)
    others: dict[str, int] = field(default_factory=dict)  # other config ids -> results recorded


def load_runs(project: Project) -> list[dict[str, Any]]:
    """Every run manifest under runs/, oldest first (unreadable ones are skipped)."""
    manifests = []
    for path in sorted(project.runs_dir.glob(f"*/{MANIFEST_FILE}")):
        try:
            manifests.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            continue
    return sorted(manifests, key=lambda m: m.get("created") or 0)


def latest_results(project: Project, reference: str, evalset: str, config_id: str | None = None
                   ) -> dict[str, dict[str, Any]]:
    """The newest judging of each candidate against `reference` on `evalset` under judge configuration
    `config_id` (None: any, the newest whatever its judges)."""
    rows = tables.judgings(project.store, reference, evalset, UNKNOWN_CONFIG)
    return {row["candidate"]: dict(row) for row in rows if config_id is None or row["config"] == config_id}


def board_config(project: Project, reference: str | None = None, evalset: str | None = None, *,
                 judges: list[str] | None = None, config_id: str | None = None) -> BoardConfig:
    """Which judge configuration the leaderboard ranks: `config_id`, else the jury `judges` (default:
    evaluate.judges) when it has results, else the newest result's."""
    cfg = project.config.evaluate
    reference = reference or cfg.reference
    ev = resolve_evalset(project, evalset) if (evalset or list_evalsets(project)) else None
    if ev is None:
        return BoardConfig(None, None, configured=False)
    rows = tables.judge_configs(project.store, reference, ev, UNKNOWN_CONFIG)
    recorded = {r["config"]: r for r in rows}
    wanted, config = jury_config(project, judges or cfg.judges, cfg.rubric, ev)
    configured = config_id is None
    if config_id is None and wanted not in recorded and rows and not judges:
        wanted = rows[-1]["config"]  # the configured jury judged nothing yet: show the newest results
        configured = False
    elif config_id is not None:
        if config_id not in recorded:
            raise UnderdogError(f"no results under judge configuration {config_id!r} against {reference} on {ev} "
                                f"(known: {', '.join(recorded) or 'none yet'})")
        wanted = config_id
    stored = recorded.get(wanted)
    if stored is not None:
        config = json.loads(stored["judge_config"]) if stored["judge_config"] else None
    picked = bool(judges) or config_id is not None
    return BoardConfig(wanted, config, configured and not picked, picked,
                       {k: r["count"] for k, r in recorded.items() if k != wanted})


def leaderboard(project: Project, reference: str | None = None, evalset: str | None = None, *,
                judges: list[str] | None = None, config_id: str | None = None,
                runs: list[dict[str, Any]] | None = None) -> list[Entry]:
    """Runs and judged baselines of one judge configuration (see `board_config`), best judged quality first
    (fact recall where the eval set has facts, then win rate), unjudged last. `runs`: the run manifests (as
    dicts) to rank, default every one under runs/ (`train.runs.run_summaries` gives them without their loss
    history, from the store, for a caller that asks often)."""
    reference = reference or project.config.evaluate.reference
    ev = resolve_evalset(project, evalset) if (evalset or list_evalsets(project)) else None
    board = board_config(project, reference, ev, judges=judges, config_id=config_id)
    results = latest_results(project, reference, ev, board.config_id) if ev else {}
    entries = [_run_entry(m, results.pop(m.get("id"), None)) for m in (load_runs(project) if runs is None
                                                                        else runs)]
    entries += [Entry(name, "baseline", result=row) for name, row in results.items()]
    return sorted(entries, key=lambda e: (e.result is None, tuple(-x for x in e.quality())))


def _run_entry(manifest: dict[str, Any], result: dict[str, Any] | None) -> Entry:
    overfit = manifest.get("overfit") or {}
    return Entry(manifest.get("id", "?"), "run", manifest.get("status", "?"), manifest.get("dataset"),
                 manifest.get("hyperparameters") or {}, manifest.get("metrics") or {}, bool(overfit.get("flag")),
                 overfit.get("reason"), manifest.get("history") or [], result)


def recommend(entries: list[Entry]) -> Entry | None:
    """The finished, judged run with the best judged quality (`Entry.quality`: fact recall where the eval set
    has ground truth, then win rate and its lower bound). The overfit flag only breaks ties between runs that
    no judgment separates: a flagged run that answers better is still the better run."""
    ok = [e for e in entries if e.kind == "run" and e.status == "done" and e.result]
    return max(ok, key=lambda e: (e.quality(), not e.overfit), default=None)
