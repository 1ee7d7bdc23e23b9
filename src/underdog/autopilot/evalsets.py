"""The autopilot's held-out questions: generated with an answer key (unless `autopilot.evalset` names yours),
split once into a dev split (every selection) and a test split (judged once, for the pick), and the jury.
"""

from __future__ import annotations

import hashlib

from underdog.autopilot.base import Estimate, Pricer, Sizes
from underdog.autopilot.context import JURY, Budget, Context
from underdog.autopilot.names import DEV, POOL, TEST
from underdog.errors import ConfigError, UnderdogError
from underdog.evaluate.evalset import (
    GROUND_TRUTH_TOKENS,
    QUESTION_TOKENS,
    Question,
    generate_evalset,
    list_evalsets,
    load_evalset,
    save_evalset,
)
from underdog.project import Project

GROUNDED_JURY = ("facts", "similarity")


class EvalSet:
    key, title = "evalset", "eval set: held-out questions, split once into dev and test"
    artifact = f"eval sets {DEV} and {TEST} (split of {POOL} or autopilot.evalset) and the jury"

    def estimate(self, ctx: Context, sizes: Sizes) -> list[Estimate]:
        price, n = Pricer(ctx.project), ctx.settings.evalset_size
        row = price("evalset", "evalset", f"eval set: {n} questions with an answer key", "teacher", 2 * n, 150,
                    QUESTION_TOKENS)
        row.add(price("evalset", "evalset", "", "teacher", n, 250, GROUND_TRUTH_TOKENS))  # the answer key
        evalsets = list_evalsets(ctx.project)
        row.done = ctx.cfg.evalset is not None or POOL in evalsets or DEV in evalsets
        return [row]

    def done(self, ctx: Context) -> bool:
        return ctx.finished(self.key)

    def run(self, ctx: Context, budget: Budget) -> None:
        questions = pool_questions(ctx.project)
        if questions is None:
            project = budget.take("evalset", essential=True)
            assert project is not None
            questions = generate_evalset(project, POOL, size=ctx.settings.evalset_size, ground_truth=True)
            ctx.journal.decide("evalset", f"generated {len(questions)} questions with an answer key as {POOL}")
        if DEV not in list_evalsets(ctx.project):
            dev, test = split(questions, ctx.cfg.test_share, ctx.cfg.seed)
            if not dev or not test:
                raise UnderdogError(f"the eval set has {len(questions)} questions: too few to split into dev and test")
            source = f"autopilot split of {ctx.cfg.evalset or POOL} (seed {ctx.cfg.seed})"
            save_evalset(ctx.project, TEST, test, source=source + ", test")
            save_evalset(ctx.project, DEV, dev, source=source + ", dev")  # last: its existence marks the split
            ctx.journal.decide("evalset", f"split into {DEV} ({len(dev)}) and {TEST} ({len(test)})",
                               why="selection uses dev only; test is judged once, for the pick and the base")
        jury = jury_for(ctx.project, load_evalset(ctx.project, DEV) + load_evalset(ctx.project, TEST))
        ctx.journal.decide("evalset", f"jury: {', '.join(jury)}",
                           why="the eval set has ground truth" if jury == list(GROUNDED_JURY)
                           else "no ground truth: the configured jury")
        ctx.journal.event(step=JURY, jury=jury)


def split(questions: list[Question], test_share: float, seed: int) -> tuple[list[Question], list[Question]]:
    """(dev, test): a seeded split, refusal probes and fact questions each divided in the same proportion."""
    dev, test = [], []
    for group in ([q for q in questions if q.expect == "refusal"], [q for q in questions if q.expect != "refusal"]):
        ordered = sorted(group, key=lambda q: hashlib.sha256(f"{seed}:{q.id}".encode()).hexdigest())
        k = round(len(ordered) * test_share)
        k = min(max(k, 1), len(ordered) - 1) if len(ordered) >= 2 else k
        test += ordered[:k]
        dev += ordered[k:]
    return dev, test


def jury_for(project: Project, questions: list[Question]) -> list[str]:
    """The grounded judges when most questions have ground truth (facts or `expect`), else the configured jury."""
    grounded = sum(bool(q.facts or q.expect) for q in questions)
    return list(GROUNDED_JURY) if questions and grounded * 2 >= len(questions) else list(
        project.config.evaluate.judges)


def pool_questions(project: Project) -> list[Question] | None:
    """The held-out questions, when they exist yet."""
    name = project.config.autopilot.evalset or POOL
    if name not in list_evalsets(project):
        if project.config.autopilot.evalset:
            raise ConfigError(f"autopilot.evalset: no eval set named {name!r} (see `underdog evalset list`)")
        return None
    return load_evalset(project, name)


def planned_split(project: Project) -> tuple[list[str], int, int]:
    """(jury, dev questions, test questions) as the plan counts them: from the eval set when it exists, else
    from `autopilot.evalset_size` (a generated eval set has an answer key: grounded)."""
    cfg = project.config.autopilot
    questions = pool_questions(project)
    if questions is None:
        n_test = round(cfg.evalset_size * cfg.test_share)
        return list(GROUNDED_JURY), cfg.evalset_size - n_test, n_test
    dev, test = split(questions, cfg.test_share, cfg.seed)
    return jury_for(project, questions), len(dev), len(test)
