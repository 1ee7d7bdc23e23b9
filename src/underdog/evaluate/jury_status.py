"""What commands say about their jury: was it calibrated against the arena's votes, how well it predicts held-out
votes, and which members disagree with the people (read from the stored calibrations; no model, no fit).

    status = jury_status(project)          # JuryStatus: .calibrated (CalibratedJury | None), .warnings
    status.summary()                       # one line for the leaderboard, tune-prompt and the report
    report_section(project)                # (Markdown, HTML) for the leaderboard report, or None

The numbers come from `underdog calibrate` (evaluate/calibrate.py), which records them in `calibrations`.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from underdog.arena import store as arena_tables
from underdog.arena.store import Vote
from underdog.evaluate import store as tables
from underdog.evaluate.ratings import Estimate
from underdog.project import Project


@dataclass
class Example:
    """A vote on which a judge disagrees with the people."""

    question: str
    people_chose: str
    judge_chose: str


@dataclass
class JudgeRow:
    """One judge's (or jury's) agreement with the votes."""

    judge: str
    votes: int  # votes it decided (not abstained, no error)
    accuracy: Estimate | None  # without ties
    kappa: Estimate | None
    tau: float | None  # Kendall's tau of the candidates' rankings (judge vs people)
    candidates: int  # ranked by both
    examples: list[Example] = field(default_factory=list)  # votes where it disagrees
    note: str = ""  # why it has no numbers (e.g. the people judge is short of votes)

    @property
    def disagrees(self) -> bool:
        """Disagrees with the people beyond chance: the whole kappa interval below 0."""
        return self.kappa is not None and self.kappa.high < 0

    @classmethod
    def from_json(cls, data: dict) -> JudgeRow:
        """A row as a calibration stored it (`dataclasses.asdict`)."""
        est = {k: Estimate(**data[k]) if data.get(k) else None for k in ("accuracy", "kappa")}
        return cls(data["judge"], data["votes"], est["accuracy"], est["kappa"], data["tau"], data["candidates"],
                   [Example(**e) for e in data["examples"]], data.get("note", ""))

    @property
    def chance(self) -> bool:
        """No better than chance: the kappa interval includes 0."""
        return self.kappa is not None and self.kappa.low <= 0 <= self.kappa.high


@dataclass
class CalibratedJury:
    judges: list[str]
    weights: dict[str, float]
    held_out: float  # share of held-out decisive votes it predicts (a tie counts half)
    low: float
    high: float
    votes: int


def votes_version(votes: Sequence[Vote]) -> str:
    """Which votes a calibration used (who chose what on which texts)."""
    body = json.dumps([(v.voter_id, v.question, v.answer_1, v.answer_2, v.outcome) for v in votes])
    return hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass
class JuryStatus:
    judges: list[str]
    calibrated: CalibratedJury | None  # the calibration that chose exactly this jury, if any
    votes: int  # votes in the arena now
    new_votes: bool  # votes changed since that calibration
    warnings: list[str] = field(default_factory=list)  # members that disagree with the people beyond chance

    def summary(self) -> str | None:
        """One line for the leaderboard, tune-prompt and the report; None without votes or calibration."""
        if self.calibrated:
            c = self.calibrated
            return (f"jury calibrated against {c.votes} votes: held-out agreement with the people {c.held_out:.0%} "
                    f"(95% CI {c.low:.0%}-{c.high:.0%})" + ("; votes changed since: run `underdog calibrate` again"
                                                             if self.new_votes else ""))
        if self.votes:
            return (f"jury not calibrated against the arena's {self.votes} votes: `underdog calibrate` measures how "
                    "each judge agrees with the people")
        return None


def calibrations_of(project: Project) -> list[dict]:
    """The stored calibrations, newest first, their JSON read."""
    return [dict(r) | {"jury": json.loads(r["jury"]), "judges": json.loads(r["judges"])}
            for r in tables.calibrations(project.store)]


def jury_status(project: Project, judges: Sequence[str] | None = None) -> JuryStatus:
    """Whether the jury (default: evaluate.judges with its weights) is one a calibration chose, its held-out
    agreement, and warnings for members the newest calibration found disagreeing with the people."""
    cfg = project.config.evaluate
    members = list(judges or cfg.judges)
    weights = {} if judges else cfg.judge_weights
    votes = arena_tables.load_votes(project.store) if arena_tables.any_vote(project.store) else []
    found = calibrations_of(project)
    chosen = next((c for c in found if c["jury"] and sorted(c["jury"]["judges"]) == sorted(members)
                   and _same_weights(c["jury"]["weights"], weights, members)), None)
    calibrated = CalibratedJury(**chosen["jury"]) if chosen else None
    status = JuryStatus(members, calibrated, len(votes),
                        bool(chosen) and chosen["votes_version"] != votes_version(votes))
    newest = found[0] if found else None
    for row in (newest["judges"] if newest else []):
        if row["judge"] in members and row["kappa"] and row["kappa"]["high"] < 0:
            status.warnings.append(disagreement_text(JudgeRow.from_json(row)))
    return status


def _same_weights(chosen: dict[str, float], configured: dict[str, float], members: Sequence[str]) -> bool:
    ours = [configured.get(m, 1.0) for m in members]
    theirs = [chosen.get(m, 1.0) for m in members]
    top_ours, top_theirs = max(ours) or 1.0, max(theirs) or 1.0
    return all(abs(a / top_ours - b / top_theirs) < 0.01 for a, b in zip(ours, theirs, strict=True))


def disagreement_text(row: JudgeRow) -> str:
    """The warning for a judge that disagrees with the people beyond chance, with a few pairs where it does."""
    k = row.kappa
    lines = [f"warning: {row.judge} disagrees with the people beyond chance (Cohen's kappa {k.value:.2f}, 95% CI "
             f"{k.low:.2f} to {k.high:.2f}, over {row.votes} votes)" + ("; for example:" if row.examples else "")]
    lines += [f"  - {e.question}\n    people preferred: {e.people_chose}\n    {row.judge} preferred: {e.judge_chose}"
              for e in row.examples]
    return "\n".join(lines)


def report_section(project: Project, judges: Sequence[str] | None = None) -> tuple[str, str] | None:
    """(Markdown, HTML) of the jury's calibration for the leaderboard report; None without votes or calibration."""
    status = jury_status(project, judges)
    if (line := status.summary()) is None:
        return None
    md = "\n".join(["## Jury vs people", "", line, "", *[f"    {w}" for w in status.warnings]]) + "\n"
    warnings = "".join(f"<pre>{html.escape(w)}</pre>" for w in status.warnings)
    return md, f"<h2>Jury vs people</h2><p>{html.escape(line)}</p>{warnings}"
