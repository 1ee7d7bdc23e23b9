"""Grounded judges: verdicts from an eval set's ground truth instead of a model's opinion.

    facts       share of a question's facts each answer states; refusal probes scored by refusing (facts.py)
    similarity  embedding similarity of each answer to the question's reference answer (similarity.py)
    people      not grounded in truth but in votes: a preference model fitted on the arena's votes (people.py)

Their names are reserved: they are accepted wherever a judge is named (`-j facts`, `evaluate.judges`, a jury,
tune-prompt, the arena's LLM verdicts). A grounded judge decides each (question, first answer, second answer)
once: "A" (first), "B" (second), "tie", or "abstain" when the question has no ground truth it can use (no vote).
"""

from __future__ import annotations

from underdog.evaluate.judges.base import (
    ABSTAIN,
    Decision,
    GroundedJudge,
    Item,
    better,
    is_grounded,
    is_model_free,
)
from underdog.evaluate.judges.facts import FactsJudge
from underdog.evaluate.judges.similarity import SimilarityJudge

__all__ = ["ABSTAIN", "Decision", "GroundedJudge", "Item", "better", "grounded_judge", "is_grounded",
           "is_model_free"]


def grounded_judge(name: str, similarity_margin: float = 0.02) -> GroundedJudge:
    """The grounded judge called `name`."""
    return FactsJudge() if name == "facts" else SimilarityJudge(similarity_margin)
