"""Answers of any candidate (base model, run adapter, API model) to every question of an eval set.

    answers = answer(project, "reference")                       # a role
    answers = answer(project, "20261126-1200-r8", evalset="default")  # a training run
    answers = answer(project, Candidate("warm", spec.model_copy(update={"system_prompt": "..."})))
    per_run = answer_many(project, ["run-a", "run-b", "run-c"], evalset="dev")   # asked together

A candidate is a name plus a model spec; its identity (`Candidate.id`) covers everything that changes the
answers: provider, model, endpoint, adapter weights, system prompt and sampling params. Answers are stored in
the `answers` table under that identity, and every model call is cached, so a re-run costs nothing.
`answer` is `answer_many` with one candidate: several candidates asked together share the local backend's
batches (runs of one base model: mixed-adapter batches), and each lands in the same store and cache as alone.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from underdog.config import ModelSpec
from underdog.errors import ModelError
from underdog.evaluate import store as tables
from underdog.evaluate.evalset import Question, load_evalset, resolve_evalset
from underdog.llm.base import Reply
from underdog.llm.identity import candidate_id
from underdog.project import Project


@dataclass(frozen=True)
class Candidate:
    """A named model configuration whose answers are judged."""

    name: str
    spec: ModelSpec

    @property
    def id(self) -> str:
        return candidate_id(self.spec)


@dataclass
class Answer:
    question_id: str
    question: str
    answer: str
    output_tokens: int = 0
    error: str | None = None


def resolve_candidate(project: Project, candidate: str | ModelSpec | Candidate, *, system_prompt: str | None = None,
                      temperature: float | None = None, top_p: float | None = None,
                      max_tokens: int | None = None) -> Candidate:
    """A Candidate from a role / run id / model name / spec, with optional prompt and sampling changes."""
    if isinstance(candidate, Candidate):
        name, spec = candidate.name, candidate.spec
    elif isinstance(candidate, ModelSpec):
        name, spec = spec_label(candidate), candidate
    else:
        name, spec = candidate, project.model_spec(candidate)
    cap = max_tokens or project.config.evaluate.answer_max_tokens
    spec = spec.with_params(temperature=temperature, top_p=top_p, max_tokens=cap)
    if system_prompt is not None:
        spec = spec.model_copy(update={"system_prompt": system_prompt or None})
    return Candidate(name, spec)


def variant(project: Project, name: str, *, system_prompt: str | None = None, temperature: float | None = None,
            top_p: float | None = None) -> Candidate:
    """`name` with another system prompt / sampling, labelled so that it does not replace `name` on the
    leaderboard: `run-3 [system=1a2b3c t=0.3]`."""
    cand = resolve_candidate(project, name, system_prompt=system_prompt, temperature=temperature, top_p=top_p)
    changes = [f"system={hashlib.sha256(system_prompt.encode()).hexdigest()[:6]}" if system_prompt else None,
               f"t={temperature:g}" if temperature is not None else None, f"p={top_p:g}" if top_p is not None else None]
    changes = [c for c in changes if c]
    return Candidate(f"{name} [{' '.join(changes)}]", cand.spec) if changes else cand


def spec_label(spec: ModelSpec) -> str:
    return f"{spec.provider}:{spec.model}" + (f"+{spec.adapter}" if spec.adapter else "")


def answer(project: Project, candidate: str | ModelSpec | Candidate, evalset: str | None = None, *,
           progress: bool = True, **changes: object) -> list[Answer]:
    """Answers of `candidate` to every question of `evalset`, in eval-set order (stored and cached).

    `changes` are resolve_candidate's keyword arguments (system_prompt, temperature, top_p, max_tokens).
    A failed call becomes an Answer with `error` set; it is retried on the next run.
    """
    return answer_many(project, [candidate], evalset, progress=progress, **changes)[0]


def answer_many(project: Project, candidates: Sequence[str | ModelSpec | Candidate], evalset: str | None = None, *,
                progress: bool = True, **changes: object) -> list[list[Answer]]:
    """`answer` for each of `candidates`, all asked at once: requests for adapters of one local base model are
    generated in shared mixed-adapter batches (llm/local.py). Each candidate's answers are stored and cached
    exactly as `answer` alone would, so `judge` then reads them back."""
    cands = [resolve_candidate(project, c, **changes) for c in candidates]  # type: ignore[arg-type]
    name = resolve_evalset(project, evalset)
    questions = load_evalset(project, name)
    prompts = [q.question for q in questions]
    llms = [project.model(cand.spec, role=cand.name, stage="answer") for cand in cands]

    async def together() -> list[list[Reply]]:
        return await asyncio.gather(*(llm.abatch(prompts, errors="return", progress=f"answers of {cand.name}"
                                                 if progress else None) for cand, llm in zip(cands, llms, strict=True)))

    out = []
    for cand, replies in zip(cands, project.runtime.run(together()), strict=True):
        answers = [Answer(q.id, q.question, r.text, r.output_tokens, r.error)
                   for q, r in zip(questions, replies, strict=True)]
        _store_answers(project, cand, name, answers)
        out.append(answers)
    return out


def answer_questions(project: Project, candidate: Candidate, questions: Sequence[Question], *, sample: int = 0,
                     stage: str = "answer", progress: bool = True) -> list[Answer]:
    """Answers of `candidate` to questions that are not (all) an eval set's: a dataset's questions, a question
    file. Cached by the call path, not stored in `answers` (which holds eval-set answers). `sample` k > 0 asks for
    another sample (seed + k, its own cache entry), as best-of-n does."""
    llm = project.model(candidate.spec, role=candidate.name, stage=stage)
    seed = (candidate.spec.params.seed or 0) + sample
    replies = llm.batch([q.question for q in questions], errors="return", samples=[sample] * len(questions),
                        seed=seed, progress=f"answers of {candidate.name}" if progress else None)
    return [Answer(q.id, q.question, r.text, r.output_tokens, r.error) for q, r in zip(questions, replies,
                                                                                       strict=True)]


def check_answered(name: str, answers: list[Answer]) -> None:
    """Raise ModelError, saying why, when every call of a candidate failed (a wrong key or endpoint)."""
    if answers and all(a.error for a in answers):
        raise ModelError(f"every answer of {name} failed, e.g.: {answers[0].error}")


def _store_answers(project: Project, cand: Candidate, evalset: str, answers: list[Answer]) -> None:
    s = cand.spec
    identity = {"candidate_id": cand.id, "evalset": evalset, "candidate": cand.name, "model": s.model,
                "adapter": s.adapter, "system_prompt": s.system_prompt, "temperature": s.params.temperature,
                "top_p": s.params.top_p, "max_tokens": s.params.max_tokens}
    tables.put_answers(project.store, [{**identity, **asdict(a)} for a in answers])


def load_answers(project: Project, candidate_id: str, evalset: str) -> dict[str, Answer]:
    """Stored answers of a candidate identity on an eval set, by question id."""
    return {r["question_id"]: Answer(**dict(r)) for r in tables.answers_of(project.store, candidate_id, evalset)}
