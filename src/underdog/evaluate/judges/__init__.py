"""Grounded judges: verdicts from an eval set's ground truth instead of a model's opinion.

    facts       share of a question's facts each answer states; refusal probes scored by refusing (facts.py)
    similarity  embedding similarity of each answer to the question's reference answer (similarity.py)

Their names are reserved: they are accepted wherever a judge is named (`-j facts`, `evaluate.judges`).
"""

from underdog.config import GROUNDED_JUDGES


def is_grounded(name: object) -> bool:
    """Whether a judge name is one of the grounded judges rather than a model."""
    return isinstance(name, str) and name in GROUNDED_JUDGES
