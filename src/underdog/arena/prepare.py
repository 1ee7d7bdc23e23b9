"""Filling the arena: candidates' answers from the evaluation stage, and the LLM jury's verdict on every pair.

    add_candidate(project, "20261126-1200-r8", name="fine-tuned")       # answers via evaluate.answer (cached)
    add_candidate(project, "student", name="warm", system_prompt="Be warm.", temperature=0.3)
    judge_arena(project)                                                 # fills arena_llm_verdicts
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from underdog.arena.votes import add_items
from underdog.errors import ConfigError, UnderdogError
from underdog.evaluate.answer import answer, resolve_candidate
from underdog.evaluate.evalset import resolve_evalset
from underdog.evaluate.judge import judge_pairs
from underdog.project import Project

_PAIRS = """SELECT i1.question_id, i1.question, i1.candidate AS c1, i1.answer AS a1, i2.candidate AS c2,
                   i2.answer AS a2
            FROM arena_items i1 JOIN arena_items i2 ON i1.question_id = i2.question_id
                 AND i1.candidate < i2.candidate
            ORDER BY i1.question_id, c1, c2"""


def add_candidate(project: Project, model: str, *, name: str | None = None, evalset: str | None = None,
                  system_prompt: str | None = None, temperature: float | None = None,
                  top_p: float | None = None, progress: bool = True) -> int:
    """Answer the eval set with `model` (a role, run id or model; optional prompt/params) and put the answers
    on show under `name` (default: `model`). Returns how many answers were added."""
    cand = resolve_candidate(project, model, system_prompt=system_prompt, temperature=temperature, top_p=top_p)
    evalset = resolve_evalset(project, evalset)
    answers = answer(project, cand, evalset, progress=progress)
    good = [(a.question_id, a.question, a.answer) for a in answers if not a.error and a.answer.strip()]
    if not good:
        raise UnderdogError(f"{model} produced no usable answer on eval set {evalset!r}")
    return add_items(project.store, name or model, good, source=f"{evalset}:{cand.id}")


def load_settings(path: Path) -> dict[str, Any]:
    """system_prompt, temperature and top_p from a tune-prompt `best.yaml` (missing keys are left out)."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read settings ({exc.__class__.__name__})") from None
    params = data.get("params") or {} if isinstance(data, dict) else None
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected `system_prompt:` and `params: {{temperature, top_p}}`")
    out = {"system_prompt": data.get("system_prompt") or "", **{k: params[k] for k in ("temperature", "top_p")
                                                                 if k in params}}
    return out


def judge_arena(project: Project, progress: bool = True) -> int:
    """The evaluation jury's verdict (position-swapped, cached) on every arena pair; returns how many."""
    pairs = project.store.query(_PAIRS)
    outcomes = judge_pairs(project, [(p["question"], p["a1"], p["a2"]) for p in pairs],
                           progress="judging arena pairs" if progress else None)
    judges = ",".join(project.config.evaluate.judges)
    rows = [(p["question_id"], p["c1"], p["c2"], {"first": p["c1"], "second": p["c2"]}.get(o), judges, time.time())
            for p, o in zip(pairs, outcomes, strict=True) if o not in ("error", "abstain")]  # abstain: no vote
    with project.store.transaction() as db:
        db.executemany("INSERT OR REPLACE INTO arena_llm_verdicts VALUES (?, ?, ?, ?, ?, ?)", rows)
    return len(rows)
