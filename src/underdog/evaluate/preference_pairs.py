"""Preference pairs from judges: the jury's verdicts between two candidates, and n samples ranked by a judge.

    pairs, counts = pairs_from_verdicts(project, "reference", "student", found, judges=["judge"])
    pairs, counts = pairs_from_samples(project, "student", found, n=4, judges=["people"])

`found` is a `questions.QuestionSet` of training questions (a dataset's questions or a file): never an eval
set's (the caller, `arena.preferences.build_preferences`, refuses those). Each pair's prompt is the question
alone (no system prompt), so a model trained on it learns the preferred behaviour without being asked for it.
Ties, abstentions and errors make no pair.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import combinations

from underdog.data.preferences import PreferencePair
from underdog.evaluate.answer import Answer, answer_questions, resolve_candidate
from underdog.evaluate.judge import judge_pairs
from underdog.evaluate.questions import QuestionSet
from underdog.project import Project


def prompt_of(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def _usable(answers: Sequence[Answer]) -> list[Answer | None]:
    return [a if not a.error and a.answer.strip() else None for a in answers]


def pairs_from_verdicts(project: Project, first: str, second: str, found: QuestionSet,
                        judges: Sequence[str] | None = None) -> tuple[list[PreferencePair], dict[str, int]]:
    """Both candidates answer every question; the jury (`judges`, default evaluate.judges) picks the better
    answer, which is chosen and the other rejected."""
    cand_1, cand_2 = resolve_candidate(project, first), resolve_candidate(project, second)
    ones = _usable(answer_questions(project, cand_1, found.questions, stage="preferences"))
    twos = _usable(answer_questions(project, cand_2, found.questions, stage="preferences"))
    both = [(a, b) for a, b in zip(ones, twos, strict=True) if a and b and a.answer != b.answer]
    outcomes = judge_pairs(project, [(a.question, a.answer, b.answer) for a, b in both], judges=judges,
                           progress=f"judging {first} vs {second}")
    jury = list(judges or project.config.evaluate.judges)
    pairs = []
    for (a, b), outcome in zip(both, outcomes, strict=True):
        if outcome in ("first", "second"):
            chosen, rejected = (a, b) if outcome == "first" else (b, a)
            names = (first, second) if outcome == "first" else (second, first)
            pairs.append(PreferencePair(prompt_of(a.question), chosen.answer, rejected.answer, {
                "source": "verdicts", "weight": 1.0, "jury": jury, "chosen_by": names[0], "rejected_by": names[1],
                "question_set": found.name}))
    tally = Counter(outcomes)
    return pairs, {"questions": len(found.questions), "answered_by_both": len(both), "pairs": len(pairs),
                   "ties": tally["tie"], "no_verdict": tally["abstain"] + tally["error"]}


def pairs_from_samples(project: Project, model: str, found: QuestionSet, n: int = 4,
                       judges: Sequence[str] | None = None) -> tuple[list[PreferencePair], dict[str, int]]:
    """n samples of `model` per question (sample k: seed + k), every two compared by the jury (a round robin:
    a win 1, a tie 1/2); the sample with the most points is chosen, the one with the fewest rejected. No pair
    when they score alike or the samples are all the same text."""
    if n < 2:
        raise ValueError("ranking samples needs n >= 2")
    cand = resolve_candidate(project, model)
    samples = [_usable(answer_questions(project, cand, found.questions, sample=k, stage="preferences",
                                        progress=True)) for k in range(n)]
    per_question = [list(dict.fromkeys(s.answer for s in column if s)) for column in zip(*samples, strict=True)]
    games = [(i, x, y) for i, texts in enumerate(per_question) for x, y in combinations(range(len(texts)), 2)]
    outcomes = judge_pairs(project, [(found.questions[i].question, per_question[i][x], per_question[i][y])
                                     for i, x, y in games], judges=judges, progress=f"ranking {n} samples")
    points: list[Counter[int]] = [Counter({k: 0.0 for k in range(len(texts))}) for texts in per_question]
    for (i, x, y), outcome in zip(games, outcomes, strict=True):
        points[i][x] += {"first": 1.0, "tie": 0.5}.get(outcome, 0.0)
        points[i][y] += {"second": 1.0, "tie": 0.5}.get(outcome, 0.0)
    jury, pairs = list(judges or project.config.evaluate.judges), []
    for i, texts in enumerate(per_question):
        if len(texts) < 2:
            continue
        ranked = sorted(range(len(texts)), key=lambda k: -points[i][k])
        best, worst = ranked[0], ranked[-1]
        if points[i][best] > points[i][worst]:
            pairs.append(PreferencePair(prompt_of(found.questions[i].question), texts[best], texts[worst], {
                "source": "samples", "weight": (points[i][best] - points[i][worst]) / (len(texts) - 1),
                "jury": jury, "model": model, "samples": n, "question_set": found.name}))
    return pairs, {"questions": len(found.questions), "samples": n, "comparisons": len(games), "pairs": len(pairs),
                   "same_text": sum(len(t) < 2 for t in per_question)}
