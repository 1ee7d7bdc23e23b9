"""Semantic similarity to the reference answer: the `similarity` judge.

    vectors = embed(["first text", "second text"])      # L2-normalised all-MiniLM-L6-v2 sentence embeddings
    SimilarityJudge(margin=0.02).decide([Item(question, first, second, reference=...)])

The model and its loader are `underdog.llm.embeddings` (shared with curation's semantic passes); the judge runs
it in fp32 and keeps each text's embedding in memory for the process only.
"""

from __future__ import annotations

from typing import Any

from underdog.evaluate.judges import ABSTAIN, Decision, Item, better
from underdog.llm.embeddings import MODEL_NAME, encode

_vectors: dict[str, Any] = {}  # text -> embedding, for this process only


def embed(texts: list[str]) -> Any:
    """L2-normalised embeddings of `texts` (a float tensor, one row per text)."""
    import torch  # here: torch takes seconds to import, and `underdog --help` must stay fast

    todo = list(dict.fromkeys(t for t in texts if t not in _vectors))
    if todo:
        _vectors.update(zip(todo, encode(todo), strict=True))
    return torch.stack([_vectors[t] for t in texts]) if texts else torch.empty(0)


def similarities(pairs: list[tuple[str, str]]) -> list[float]:
    """Cosine similarity of each (text, other text) pair."""
    if not pairs:
        return []
    left, right = embed([a for a, _ in pairs]), embed([b for _, b in pairs])
    return (left * right).sum(-1).tolist()


class SimilarityJudge:
    """The answer closer in meaning to the reference answer wins; within `margin` it is a tie. Abstains on a
    question without a reference answer."""

    name = "similarity"
    label = "similarity"

    def __init__(self, margin: float = 0.02):
        self.margin = margin

    def identity(self) -> str:
        return f"similarity-v1:{MODEL_NAME}:margin={self.margin}"

    def decide(self, items: list[Item]) -> list[Decision]:
        usable = [i for i, item in enumerate(items) if item.reference]
        sims = similarities([(items[i].first, items[i].reference) for i in usable]
                            + [(items[i].second, items[i].reference) for i in usable])
        first = dict(zip(usable, sims[:len(usable)], strict=True))
        second = dict(zip(usable, sims[len(usable):], strict=True))
        return [Decision(better(first[i], second[i], self.margin), f"similarity: {first[i]:.3f}/{second[i]:.3f}")
                if i in first else Decision(ABSTAIN, "no reference answer") for i in range(len(items))]
