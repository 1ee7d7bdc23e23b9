"""Filling the arena: candidates' answers from the evaluation stage, and the LLM jury's verdict on every pair.

    add_candidate(project, "20261126-1200-r8", name="fine-tuned")       # answers via evaluate.answer (cached)
    add_candidate(project, "student", name="warm", system_prompt="Be warm.", temperature=0.3)
    judge_arena(project)                                                 # fills arena_llm_verdicts
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from underdog.arena import store as tables
from underdog.arena.votes import add_items
from underdog.errors import ConfigError, UnderdogError
from underdog.evaluate.answer import answer, answer_questions, resolve_candidate
from underdog.evaluate.evalset import resolve_evalset
from underdog.evaluate.judge import judge_pairs
from underdog.evaluate.questions import question_source
from underdog.project import Project
from underdog.textfile import read_user_text


def add_candidate(project: Project, model: str, *, name: str | None = None, evalset: str | None = None,
                  questions: str | None = None, max_questions: int | None = None,
                  system_prompt: str | None = None, temperature: float | None = None,
                  top_p: float | None = None, progress: bool = True) -> int:
    """Answer the eval set with `model` (a role, run id or model; optional prompt/params) and put the answers
    on show under `name` (default: `model`). `questions` puts other questions on show instead: `dataset:NAME`
    (a dataset's questions: votes on them can become preference data) or a question file (at most
    `max_questions`). Returns how many answers were added."""
    cand = resolve_candidate(project, model, system_prompt=system_prompt, temperature=temperature, top_p=top_p)
    if questions:
        found = question_source(project, questions, max_questions)
        answers, question_set = answer_questions(project, cand, found.questions, stage="arena",
                                                 progress=progress), found.name
    else:
        evalset = resolve_evalset(project, evalset)
        answers, question_set = answer(project, cand, evalset, progress=progress), f"evalset:{evalset}"
    good = [(a.question_id, a.question, a.answer) for a in answers if not a.error and a.answer.strip()]
    if not good:
        raise UnderdogError(f"{model} produced no usable answer on {question_set}")
    return add_items(project.store, name or model, good, source=f"{question_set}:{cand.id}",
                     question_set=question_set)


def load_settings(path: Path) -> dict[str, Any]:
    """system_prompt, temperature and top_p from a tune-prompt `best.yaml` (missing keys are left out)."""
    try:
        data = yaml.safe_load(read_user_text(path, error=ConfigError, option=None)) or {}
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
    pairs = tables.item_pairs(project.store)
    outcomes = judge_pairs(project, [(p["question"], p["a1"], p["a2"]) for p in pairs],
                           progress="judging arena pairs" if progress else None)
    judges = ",".join(project.config.evaluate.judges)
    rows = [{"question_id": p["question_id"], "cand_1": p["c1"], "cand_2": p["c2"],
             "winner": {"first": p["c1"], "second": p["c2"]}.get(o), "judge": judges}
            for p, o in zip(pairs, outcomes, strict=True) if o not in ("error", "abstain")]  # abstain: no vote
    tables.put_llm_verdicts(project.store, rows)
    return len(rows)
