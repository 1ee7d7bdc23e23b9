"""A SIMULATED voter panel: scripted voters for the offline demo and tests. Its votes are not people's.

    cast_simulated_votes(project, voters=5, noise=0.1, seed=0)   # every arena pair, each simulated voter
    taste(question, answer_a, answer_b)                           # "A" | "B" | "tie": the panel's rule, no noise

No people are reachable offline, so this panel stands in for them where a test or the demo needs votes. Its taste
is one an LLM judge told to be correct and concise does not share: it prefers an answer that first acknowledges
the resident's situation in one sentence ("Losing a permit can be stressful."), then gives the fact, over one
that only gives the fact. Each voter follows the rule, except that with probability `noise` it votes at random
(A, B or tie). Votes are deterministic given the seed (each drawn from a hash of seed, voter and pair, so the
order of pairs does not matter), stored like any vote but marked: voter ids `simulated-voter-N`, source
`simulated:<panel>`, `simulated = 1`. Casting again with the same seed adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass

from underdog.arena import store as tables
from underdog.project import Project

PANEL = "acknowledge-then-fact"
VOTER_PREFIX = "simulated-voter-"
ACKNOWLEDGEMENT = re.compile(
    r"\b(understand\w*|sorry|stress\w*|frustrat\w*|worr\w*|concern\w*|difficult|overwhelm\w*|confus\w*|"
    r"tough|hard time|anxious|upsetting|congratulations|exciting|welcome|glad|happy to help|great question|"
    r"good question|thank(s| you) for|can be (a lot|tricky|hard|daunting|complicated)|must be|not alone|"
    r"completely normal|makes sense)\b", re.IGNORECASE)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MAX_ACK_WORDS = 30


def sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_END.split(" ".join(text.split())) if s]


def is_acknowledgement(sentence: str) -> bool:
    """A short sentence about the person's situation, not a fact: an acknowledging phrase and no digit."""
    return (bool(ACKNOWLEDGEMENT.search(sentence)) and not re.search(r"\d", sentence)
            and len(sentence.split()) <= MAX_ACK_WORDS)


def appeal(answer: str) -> int:
    """How the panel likes an answer: 2 = one acknowledging sentence, then the substance; 1 = it acknowledges
    but at length (two or more such sentences first) or says nothing after; 0 = it only gives the facts."""
    parts = sentences(answer)
    if not parts or not is_acknowledgement(parts[0]):
        return 0
    rest = parts[1:]
    return 2 if rest and not is_acknowledgement(rest[0]) else 1


def taste(question: str, answer_a: str, answer_b: str) -> str:
    """The panel's vote without noise: "A", "B", or "tie" when it likes both alike."""
    a, b = appeal(answer_a), appeal(answer_b)
    return "A" if a > b else "B" if b > a else "tie"


@dataclass(frozen=True)
class Panel:
    """`voters` simulated voters of one `role`; each votes at random with probability `noise`."""

    voters: int = 5
    noise: float = 0.1
    seed: int = 0
    role: str = "judge"

    @property
    def source(self) -> str:
        return f"simulated:{PANEL} seed={self.seed} noise={self.noise:g}"

    def vote(self, voter: int, question_id: str, question: str, shown_a: str, answer_a: str, shown_b: str,
             answer_b: str) -> str:
        """One simulated voter's choice on one ballot (A, B, tie): the taste, or noise."""
        key = json.dumps([self.seed, voter, question_id, sorted((shown_a, shown_b))])
        rng = random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
        if rng.random() < self.noise:
            return rng.choice(("A", "B", "tie"))
        return taste(question, answer_a, answer_b)


def cast_simulated_votes(project: Project, voters: int = 5, noise: float = 0.1, seed: int = 0, role: str = "judge",
                         question_set: str | None = None) -> int:
    """Every simulated voter votes on every arena pair (of `question_set`, when given), sides in a seeded random
    order; returns how many votes were new. SIMULATED votes, marked as such in the database."""
    panel = Panel(voters, noise, seed, role)
    pairs = [p for p in tables.item_pairs(project.store) if question_set in (None, p["question_set"])]
    added = 0
    with project.store.transaction() as db:
        for k in range(1, voters + 1):
            voter_id = f"{VOTER_PREFIX}{k}"
            tables.ensure_voter(db, voter_id, role)
            for p in pairs:
                if tables.vote_of_voter(db, voter_id, p["question_id"], p["c1"], p["c2"]) is None:
                    db_row = _vote_row(panel, k, voter_id, p)
                    tables.put_vote(db, db_row)
                    added += 1
    return added


def _vote_row(panel: Panel, k: int, voter_id: str, pair: dict) -> dict:
    """The stored vote of simulated voter `k` on an arena pair (c1 < c2), shown in a seeded random order."""
    swap = random.Random(f"{panel.seed}:{k}:{pair['question_id']}:{pair['c1']}:{pair['c2']}").random() < 0.5
    (shown_a, answer_a), (shown_b, answer_b) = ((pair["c2"], pair["a2"]), (pair["c1"], pair["a1"])) if swap else (
        (pair["c1"], pair["a1"]), (pair["c2"], pair["a2"]))
    choice = panel.vote(k, pair["question_id"], pair["question"], shown_a, answer_a, shown_b, answer_b)
    ballot = hashlib.sha256(json.dumps([panel.source, voter_id, pair["question_id"], pair["c1"],
                                        pair["c2"]]).encode()).hexdigest()[:32]
    return {"voter_id": voter_id, "role": panel.role, "question_id": pair["question_id"], "cand_1": pair["c1"],
            "cand_2": pair["c2"], "shown_a": shown_a, "shown_b": shown_b, "choice": choice,
            "winner": {"A": shown_a, "B": shown_b}.get(choice), "ballot_id": f"simulated:{ballot}",
            "question_set": pair["question_set"], "question": pair["question"], "answer_1": pair["a1"],
            "answer_2": pair["a2"], "source": panel.source, "simulated": 1}
