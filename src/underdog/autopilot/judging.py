"""How the autopilot judges a candidate: once per (candidate, reference, eval set, jury), its numbers read from
the recorded judging (`judge_results`), so a killed autopilot that judged a candidate before its journal said so
reads that judging back instead of judging (and recording) it twice, and a resumed run sees the same numbers.

The dev score the search maximises is fact recall when the split has facts (plus `TIE_BREAK` x the win rate,
which only orders equal recalls), else the win rate against the reference.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from underdog.evaluate import store as tables
from underdog.evaluate.answer import Candidate, resolve_candidate
from underdog.evaluate.judge import judge, jury_config
from underdog.evaluate.judges.facts import Recall
from underdog.project import Project

TIE_BREAK = 0.01


def judged(project: Project, candidate: str | Candidate, evalset: str, jury: Sequence[str],
           reference: str | None = None) -> sqlite3.Row:
    """The recorded judging of `candidate` against `reference` (default: evaluate.reference) on `evalset` by
    `jury`: the newest one recorded, else a new one (answers and verdicts come from the cache when paid for)."""
    reference = reference or project.config.evaluate.reference
    if (row := recorded(project, candidate, reference, evalset, jury)) is None:
        judge(project, candidate, reference, evalset, judges=list(jury))
        row = recorded(project, candidate, reference, evalset, jury)
        assert row is not None
    return row


def recorded(project: Project, candidate: str | Candidate, reference: str, evalset: str,
             jury: Sequence[str]) -> sqlite3.Row | None:
    """The newest recorded judging of exactly this candidate, reference, eval set and jury configuration."""
    cand, ref = resolve_candidate(project, candidate), resolve_candidate(project, reference)
    config_id, _ = jury_config(project, list(jury), project.config.evaluate.rubric, evalset)
    rows = [r for r in tables.judgings(project.store, ref.name, evalset, "")
            if r["candidate_id"] == cand.id and r["reference_id"] == ref.id and r["config_id"] == config_id]
    return rows[-1] if rows else None


def numbers(row: sqlite3.Row) -> dict[str, Any]:
    """A judging's numbers for the journal and the report: win rate (+ fact recall), intervals, counts."""
    out: dict[str, Any] = {"win_rate": row["win_rate"], "win_rate_ci": [row["ci_low"], row["ci_high"]], "n": row["n"],
                           "wins": row["wins"], "ties": row["ties"], "losses": row["losses"]}
    summary = f"win rate {row['win_rate']:.0%} [{row['ci_low']:.0%}-{row['ci_high']:.0%}]"
    if row["fact_recall"] is not None:
        lo, hi = row["fact_recall_low"], row["fact_recall_high"]
        out |= {"fact_recall": row["fact_recall"], "fact_recall_ci": [lo, hi], "facts": _recall(row, "recall").facts}
        summary = f"fact recall {row['fact_recall']:.0%} [{lo:.0%}-{hi:.0%}], " + summary
    out["summary"] = summary
    return out


def reference_numbers(row: sqlite3.Row, note: str) -> dict[str, Any]:
    """The reference's fact recall and interval alone, from a judging against it (the base student, when it is
    the reference)."""
    recall = _recall(row, "reference_recall")
    if recall is None or recall.fact_recall is None or recall.ci is None:
        return {"summary": note}
    lo, hi = recall.ci
    return {"fact_recall": recall.fact_recall, "fact_recall_ci": [lo, hi], "facts": recall.facts,
            "summary": f"fact recall {recall.fact_recall:.0%} [{lo:.0%}-{hi:.0%}] ({note})"}


def dev_score(found: dict[str, Any]) -> float:
    """What the search maximises, from a judging's `numbers`."""
    recall = found.get("fact_recall")
    return found["win_rate"] if recall is None else recall + TIE_BREAK * found["win_rate"]


def _recall(row: sqlite3.Row, key: str) -> Recall | None:
    grounded = json.loads(row["grounded"] or "{}").get(key)
    return Recall(**grounded) if grounded else None
