"""Judge arbitrary answer pairs with the project's jury: evaluate.judge's cached verdicts, position swap, majority.

    outcomes = judge_pairs(project, [(question, answer_1, answer_2), ...])   # "first" | "second" | "tie" | "error"

`evaluate.judge.judge` judges a candidate's eval-set answers against the reference; tuning and the arena need
the same jury on answers it did not produce (best-of-n samples, two arena candidates), so this composes the
evaluation module's own pieces (`ask_judge`, `winner`, `combine_orders`, `majority`) without a judge of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from underdog.evaluate.judge import ask_judge, combine_orders, majority, winner
from underdog.project import Project

OUTCOME = {"candidate": "first", "reference": "second", "tie": "tie", "error": "error"}


def judge_pairs(project: Project, pairs: Sequence[tuple[str, str, str]], *, judges: Sequence[str] | None = None,
                rubric: Sequence[str] | None = None, progress: str | None = None) -> list[str]:
    """For each (question, first answer, second answer): which is better, judged in both orders by each judge.

    A judge whose verdict flips with the order counts as a tie; the jury's majority decides, else a tie.
    """
    if not pairs:
        return []
    cfg = project.config.evaluate
    rubric = list(rubric or cfg.rubric)
    asked = list(pairs) + [(q, second, first) for q, first, second in pairs]
    n = len(pairs)
    per_judge = []
    for name in judges or cfg.judges:
        got = ask_judge(project, project.llm(name, stage="judge"), rubric, asked, cfg.judge_retries, progress)
        per_judge.append([combine_orders(winner("ab", got[i].verdict), winner("ba", got[i + n].verdict))
                          for i in range(n)])
    return [OUTCOME[majority([votes[i] for votes in per_judge])] for i in range(n)]
