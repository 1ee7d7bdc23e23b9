"""Grounded judges: verdicts from an eval set's ground truth instead of a model's opinion.

    facts       share of a question's facts each answer states; refusal probes scored by refusing (facts.py)
    similarity  embedding similarity of each answer to the question's reference answer (similarity.py)
    people      not grounded in truth but in votes: a preference model fitted on the arena's votes (people.py)

Their names are reserved: they are accepted wherever a judge is named (`-j facts`, `evaluate.judges`, a jury,
tune-prompt, the arena's LLM verdicts). A grounded judge decides each (question, first answer, second answer)
once: "A" (first), "B" (second), "tie", or "abstain" when the question has no ground truth it can use (no vote).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from underdog.config import GROUNDED_JUDGES, MODEL_FREE_JUDGES

ABSTAIN = "abstain"


@dataclass(frozen=True)
class Item:
    """What a grounded judge sees: the question, two answers, and the question's ground truth."""

    question: str
    first: str
    second: str
    reference: str | None = None
    facts: tuple[str, ...] | None = None
    expect: str | None = None


@dataclass(frozen=True)
class Decision:
    verdict: str  # "A", "B", "tie" or ABSTAIN
    detail: str  # the scores behind it, for the record


class GroundedJudge(Protocol):
    name: str

    @property
    def label(self) -> str: ...

    def identity(self) -> str: ...

    def decide(self, items: list[Item]) -> list[Decision]: ...


def is_grounded(name: object) -> bool:
    """Whether a judge name is one of the grounded judges rather than a model."""
    return isinstance(name, str) and name in GROUNDED_JUDGES


def is_model_free(name: object) -> bool:
    """Whether a judge name is one of the judges that call no model (the grounded ones and `people`)."""
    return isinstance(name, str) and name in MODEL_FREE_JUDGES


def grounded_judge(name: str, similarity_margin: float = 0.02) -> GroundedJudge:
    """The grounded judge called `name`."""
    if name == "facts":
        from underdog.evaluate.judges.facts import FactsJudge

        return FactsJudge()
    from underdog.evaluate.judges.similarity import SimilarityJudge

    return SimilarityJudge(similarity_margin)


def better(first: float, second: float, margin: float = 0.0) -> str:
    """"A" when `first` beats `second` by more than `margin`, "B" the other way round, else "tie"."""
    if first - second > margin:
        return "A"
    return "B" if second - first > margin else "tie"
