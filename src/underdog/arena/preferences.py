"""Preference data from people and judges: `underdog preferences --name P ...`, an immutable dataset version.

    pairs, counts = pairs_from_votes(project)            # the arena's votes, roles weighted as in the blend
    manifest, counts = build_preferences(project, "prefs", votes=True)
    manifest, counts = build_preferences(project, "prefs", samples="student", questions="dataset:base",
                                         judges=["people"], n=4)
    manifest, counts = build_preferences(project, "prefs", verdicts=("reference", "student"),
                                         questions="dataset:base")

From votes: one pair per (question, two answers) voted on: the answer with more role-weighted votes is chosen
(a judge's vote weighs arena.weights.human, an audience vote arena.weights.audience; ties and "both bad" add
nothing); a pair whose weighted votes balance is dropped. `meta.weight` is that margin over the largest role
weight (one judge's vote: 1, one audience vote: 0.5 under the league's 40/40/20). From verdicts and samples:
see evaluate/preference_pairs.py. The prompt is the question alone, so training moves the model toward the
preferred answers without a system prompt asking for them.

Votes and questions on an eval set's questions (the same text, up to case and whitespace) evaluate: they never
become training data. They are left out and counted; a build with nothing else is refused, and nothing is
written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from underdog.arena import store as tables
from underdog.data.dataset import Manifest
from underdog.data.preferences import PreferencePair, save_preferences
from underdog.errors import UnderdogError
from underdog.evaluate.preference_pairs import pairs_from_samples, pairs_from_verdicts, prompt_of
from underdog.evaluate.questions import QuestionSet, eval_question_texts, normalise_question, question_source
from underdog.project import Project

ROLE_COMPONENT = {"judge": "human", "audience": "audience"}
SIGN = {"first": 1.0, "second": -1.0, "tie": 0.0}
NO_TRAINING = "they evaluate, they never become training data"


def pairs_from_votes(project: Project) -> tuple[list[PreferencePair], dict[str, Any]]:
    """One pair per voted (question, answers), chosen by the role-weighted votes; eval-set votes left out."""
    weights = project.config.arena.weights
    top = max(weights.get(c, 0.0) for c in ROLE_COMPONENT.values()) or 1.0
    held_out = eval_question_texts(project)
    votes = tables.load_votes(project.store)
    groups: dict[tuple[str, str, str], list[tables.Vote]] = {}
    refused = 0
    for v in votes:
        if normalise_question(v.question) in held_out:
            refused += 1
            continue
        groups.setdefault((v.question, v.answer_1, v.answer_2), []).append(v)
    pairs, balanced = [], 0
    for (question, answer_1, answer_2), group in groups.items():
        margin = sum(weights.get(ROLE_COMPONENT.get(v.role, "audience"), 0.0) * SIGN[v.outcome] for v in group)
        if abs(margin) < 1e-12:
            balanced += 1
            continue
        chosen, rejected = (answer_1, answer_2) if margin > 0 else (answer_2, answer_1)
        winners = [v for v in group if SIGN[v.outcome] * margin > 0]
        pairs.append(PreferencePair(prompt_of(question), chosen, rejected, {
            "source": "votes", "weight": round(abs(margin) / top, 4), "votes_for": len(winners),
            "votes_against": sum(SIGN[v.outcome] * margin < 0 for v in group),
            "ties": sum(v.outcome == "tie" for v in group), "question_set": group[0].question_set,
            "simulated": any(v.simulated for v in group)}))
    counts = {"votes": len(votes), "eval_set_votes_refused": refused, "pairs": len(pairs),
              "balanced_or_ties": balanced, "simulated_votes": sum(v.simulated for v in votes)}
    return pairs, counts


def training_questions(project: Project, source: str, limit: int | None = None) -> tuple[QuestionSet, int]:
    """The questions of `source` that are not an eval set's, and how many were left out as eval questions."""
    found = question_source(project, source, limit)
    held_out = eval_question_texts(project)
    kept = [q for q in found.questions if normalise_question(q.question) not in held_out]
    if not kept:
        raise UnderdogError(f"every question of {source} is an eval-set question: {NO_TRAINING}; nothing written")
    return QuestionSet(found.name, kept), len(found.questions) - len(kept)


def build_preferences(project: Project, name: str, *, votes: bool = False,
                      verdicts: tuple[str, str] | None = None, samples: str | None = None,
                      questions: str | None = None, judges: Sequence[str] | None = None, n: int = 4,
                      max_questions: int | None = None) -> tuple[Manifest, dict[str, Any]]:
    """Build preference dataset version `name` from the chosen sources (see the module docstring): pairs from
    `votes`, from the jury's `verdicts` between two candidates, and from `samples` of a model ranked by the jury,
    the last two on `questions` (dataset:NAME or a file). Nothing is written when a source is misnamed or no
    pair results."""
    if not (votes or verdicts or samples):
        raise UnderdogError("name at least one source of preferences: --votes, --verdicts A B or --samples MODEL")
    if (verdicts or samples) and not questions:
        raise UnderdogError("--verdicts and --samples need training questions: --questions dataset:NAME or a file")
    pairs: list[PreferencePair] = []
    counts: dict[str, Any] = {}
    found = None
    if questions and (verdicts or samples):
        found, counts["eval_set_questions_refused"] = training_questions(project, questions, max_questions)
    if votes:
        got, counts["votes"] = pairs_from_votes(project)
        if not got and counts["votes"]["eval_set_votes_refused"] and not (verdicts or samples):
            raise UnderdogError(f"all {counts['votes']['eval_set_votes_refused']} decisive votes are on eval-set "
                                f"questions: {NO_TRAINING}. Put training questions on show with `underdog arena "
                                "add MODEL --questions dataset:NAME` and collect votes on them; nothing written")
        pairs += got
    if verdicts and found:
        got, counts["verdicts"] = pairs_from_verdicts(project, *verdicts, found, judges)
        pairs += got
    if samples and found:
        got, counts["samples"] = pairs_from_samples(project, samples, found, n, judges)
        pairs += got
    unique = list({p.id: p for p in pairs}.values())
    counts["pairs"] = len(unique)
    recipe = {"command": "preferences", "votes": votes, "verdicts": list(verdicts) if verdicts else None,
              "samples": samples, "n": n if samples else None, "questions": questions,
              "judges": list(judges or project.config.evaluate.judges) if (verdicts or samples) else None}
    parent = questions.partition(":")[2] if questions and questions.startswith("dataset:") else None
    if not unique:
        raise UnderdogError(f"preference dataset {name!r} would hold no pair ({_why_none(counts)}): nothing written")
    return save_preferences(project.root, name, unique, parent=parent, recipe=recipe, counts=counts), counts


def _why_none(counts: dict[str, Any]) -> str:
    parts = []
    if "votes" in counts:
        c = counts["votes"]
        parts.append(f"{c['votes']} votes, {c['eval_set_votes_refused']} of them on eval-set questions, "
                     f"{c['balanced_or_ties']} voted pairs tied or balanced")
    for source in ("verdicts", "samples"):
        if source in counts:
            parts.append(f"{source}: {counts[source]['pairs']} decisive of {counts[source]['questions']} questions")
    return "; ".join(parts)
