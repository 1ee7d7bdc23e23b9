"""Paired comparison of two candidates judged against the same reference on the same questions.

    cmp = compare(project, "run-a", "run-b")    # against evaluate.reference
    cmp.bootstrap.diff, cmp.bootstrap.low, cmp.bootstrap.high, cmp.needed

Both candidates are judged (from the cache where possible); the questions both have a verdict on are paired,
the per-question score difference (1 win, 0.5 tie, 0 loss) is bootstrapped, and the number of questions a
paired test would need to separate them (80% power, alpha 0.05) is estimated from the observed differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from underdog.config import ModelSpec
from underdog.evaluate import stats
from underdog.evaluate.answer import Candidate
from underdog.evaluate.judge import JudgeResult, judge
from underdog.project import Project


@dataclass
class Comparison:
    a: JudgeResult
    b: JudgeResult
    questions: list[str]  # ids of the questions both were judged on
    bootstrap: stats.Bootstrap
    needed: float  # questions a paired test needs to tell them apart (inf when no difference was seen)
    needed_unpaired: float  # the same from the two win rates alone (two-proportion test)

    @property
    def separated(self) -> bool:
        """Whether the 95% interval of the difference excludes zero."""
        return self.bootstrap.low > 0 or self.bootstrap.high < 0


def compare(project: Project, a: str | ModelSpec | Candidate, b: str | ModelSpec | Candidate,
            reference: str | ModelSpec | Candidate | None = None, evalset: str | None = None, *,
            judges: Sequence[str | ModelSpec] | None = None, rubric: Sequence[str] | None = None,
            progress: bool = True) -> Comparison:
    """Judge `a` and `b` against `reference` and compare them question by question."""
    cfg = project.config.evaluate
    kwargs = {"judges": judges, "rubric": rubric, "progress": progress}
    first = judge(project, a, reference, evalset, **kwargs)
    second = judge(project, b, reference, evalset, **kwargs)
    sa, sb = first.scores(), second.scores()
    shared = [q for q in sa if q in sb]
    xa, xb = [sa[q] for q in shared], [sb[q] for q in shared]
    boot = stats.paired_bootstrap(xa, xb, rounds=cfg.bootstrap_rounds, seed=cfg.seed)
    return Comparison(first, second, shared, boot, stats.paired_questions_needed(xa, xb),
                      stats.questions_needed(first.win_rate, second.win_rate))
