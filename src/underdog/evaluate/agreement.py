"""How a jury's LLM judges agree with its grounded judges, and whether they follow answer length instead.

    rows = agreement({"judge (smollm2)": outcomes}, grounded_outcomes, longer)
    rows[0].agreement, rows[0].longer_share, rows[0].grounded_longer_share, rows[0].follows_length

Per question, an outcome is "candidate", "reference", "tie", or "error"/"abstain" (no verdict); `longer` says
which answer is longer ("candidate", "reference", or None when equal). Agreement is the share of questions both
decided on where the LLM judge's outcome equals the grounded judges' majority. An LLM judge *follows length*
when its decisive verdicts pick the longer answer at least LENGTH_MARGIN more often than the grounded verdicts
do, over at least MIN_DECISIVE decisive verdicts: it rewards length more than the ground truth does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

LENGTH_MARGIN = 0.15
MIN_DECISIVE = 5
DECISIVE = ("candidate", "reference")
DECIDED = ("candidate", "reference", "tie")


@dataclass(frozen=True)
class JudgeAgreement:
    judge: str
    compared: int  # questions both this judge and the grounded judges decided
    agreed: int
    decisive: int  # this judge's decisive outcomes where the answers differ in length
    longer: int  # ... of which picked the longer answer
    grounded_decisive: int
    grounded_longer: int

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    @property
    def longer_share(self) -> float | None:
        return self.longer / self.decisive if self.decisive else None

    @property
    def grounded_longer_share(self) -> float | None:
        return self.grounded_longer / self.grounded_decisive if self.grounded_decisive else None

    @property
    def follows_length(self) -> bool:
        mine, theirs = self.longer_share, self.grounded_longer_share
        return (self.decisive >= MIN_DECISIVE and mine is not None and theirs is not None
                and mine - theirs >= LENGTH_MARGIN)

    def to_json(self) -> dict:
        return asdict(self) | {"agreement": self.agreement, "longer_share": self.longer_share,
                               "grounded_longer_share": self.grounded_longer_share,
                               "follows_length": self.follows_length}


def agreement(llm_outcomes: Mapping[str, Sequence[str]], grounded: Sequence[str],
              longer: Sequence[str | None]) -> list[JudgeAgreement]:
    """One JudgeAgreement per LLM judge, against the grounded judges' per-question outcomes."""
    g_decisive, g_longer = _length_picks(grounded, longer)
    out = []
    for label, outcomes in llm_outcomes.items():
        both = [(o, g) for o, g in zip(outcomes, grounded, strict=True) if o in DECIDED and g in DECIDED]
        decisive, picked_longer = _length_picks(outcomes, longer)
        out.append(JudgeAgreement(label, len(both), sum(o == g for o, g in both), decisive, picked_longer,
                                  g_decisive, g_longer))
    return out


def _length_picks(outcomes: Sequence[str], longer: Sequence[str | None]) -> tuple[int, int]:
    """(decisive outcomes on questions whose answers differ in length, how many of them picked the longer)."""
    picks = [o == side for o, side in zip(outcomes, longer, strict=True) if o in DECISIVE and side]
    return len(picks), sum(picks)
