"""Standings from the arena's votes: Bradley-Terry ratings with bootstrap intervals, win rates per voter group,
the LLM judge's agreement with the humans on the same pairs, and the league's blended final score.

    table = standings(store, weights={"human": 0.4, "llm": 0.4, "audience": 0.2})
    print(to_markdown(table))

Components of the blended score (each a win rate in 0..1, ties counting half):
  human     votes of voters who joined through the organiser's judge link,
  audience  every other vote,
  llm       the LLM judge's verdicts on the arena's pairs (`underdog arena judge`).
"""

from __future__ import annotations

import html
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from underdog.arena import store as tables
from underdog.evaluate.ratings import (
    Game,
    Rating,
    blended_scores,
    bradley_terry_ci,
    cohen_kappa,
    percent_agreement,
    win_rates,
)
from underdog.store import Store

if TYPE_CHECKING:
    from underdog.project import Project

DEFAULT_WEIGHTS = {"human": 0.4, "llm": 0.4, "audience": 0.2}


@dataclass
class Row:
    candidate: str
    rating: Rating
    human: float | None
    audience: float | None
    llm: float | None
    blended: float


@dataclass
class Agreement:
    """LLM judge vs human votes on the same (question, pair): per vote, with and without ties."""

    n: int
    percent: float
    kappa: float
    n_no_ties: int
    percent_no_ties: float | None


@dataclass
class Standings:
    rows: list[Row]
    votes: dict[str, int]
    voters: int
    agreement: Agreement | None
    weights: dict[str, float] = field(default_factory=dict)
    anonymous: int = 0  # voters who came without an invite code (or judge link): one person may be several


def _game(cand_1: str, cand_2: str, winner: str | None) -> Game:
    return Game(cand_1, cand_2, 1.0 if winner == cand_1 else 0.0 if winner == cand_2 else 0.5)


def llm_games(store: Store) -> list[Game]:
    return [_game(r["cand_1"], r["cand_2"], r["winner"]) for r in tables.llm_verdicts(store)]


def agreement(store: Store) -> Agreement | None:
    """How often the LLM judge's verdict on a pair matches a human vote on that pair (labels: winner or tie)."""
    rows = tables.human_and_llm(store)
    if not rows:
        return None
    human, llm = [r["human"] for r in rows], [r["llm"] for r in rows]
    decided = [(h, m) for h, m in zip(human, llm, strict=True) if h != "tie" and m != "tie"]
    return Agreement(len(rows), percent_agreement(human, llm), cohen_kappa(human, llm), len(decided),
                     percent_agreement(*zip(*decided, strict=True)) if decided else None)


def standings(store: Store, weights: dict[str, float] | None = None, rounds: int = 100) -> Standings:
    """Every candidate with votes: rating (all human votes), win rates per group, blended score; best first."""
    weights = weights or DEFAULT_WEIGHTS
    votes = tables.all_votes(store)
    games = [(v["role"], _game(v["cand_1"], v["cand_2"], v["winner"])) for v in votes]
    ratings = bradley_terry_ci([g for _, g in games], rounds=rounds)
    components = {"human": win_rates([g for role, g in games if role == "judge"]),
                  "audience": win_rates([g for role, g in games if role == "audience"]),
                  "llm": win_rates(llm_games(store))}
    blended = blended_scores(components, weights)
    rows = [Row(c, r, components["human"].get(c), components["audience"].get(c), components["llm"].get(c),
                blended.get(c, math.nan)) for c, r in ratings.items()]
    rows.sort(key=lambda r: (-_nan_low(r.blended), -r.rating.rating))
    counts = dict(sorted(Counter(v["role"] for v in votes).items()))
    voters = {v["voter_id"] for v in votes}
    invited = tables.invited_voters(store)
    anonymous = len({v["voter_id"] for v in votes if v["role"] == "audience"} - invited)
    return Standings(rows, counts, len(voters), agreement(store), dict(weights), anonymous)


def _nan_low(x: float) -> float:
    return -math.inf if math.isnan(x) else x


def _pct(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def to_markdown(table: Standings) -> str:
    """The standings as a Markdown section for the report."""
    w = table.weights
    lines = ["## Arena: blind votes", "",
             f"{sum(table.votes.values())} votes ({table.votes.get('judge', 0)} from judges, "
             f"{table.votes.get('audience', 0)} from the audience) by {table.voters} voters ({table.anonymous} "
             "anonymous: without an invite code or judge link). Blended score = "
             f"{w.get('human', 0):.0%} judges + {w.get('llm', 0):.0%} LLM judge + {w.get('audience', 0):.0%} audience "
             "(win rates, ties count half).", "",
             "| # | candidate | rating (95% CI) | votes | judges | LLM | audience | blended |",
             "|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(table.rows, 1):
        lines.append(f"| {i} | {r.candidate} | {r.rating.rating:.0f} ({r.rating.low:.0f}-{r.rating.high:.0f}) | "
                     f"{r.rating.games} | {_pct(r.human)} | {_pct(r.llm)} | {_pct(r.audience)} | {_pct(r.blended)} |")
    a = table.agreement
    if a:
        lines += ["", f"LLM judge vs human votes on the same pairs: {_pct(a.percent)} agreement over {a.n} votes, "
                      f"Cohen's kappa {a.kappa:.2f}; without ties {_pct(a.percent_no_ties)} over {a.n_no_ties}."]
    return "\n".join(lines) + "\n"


def to_html(table: Standings) -> str:
    """The standings as an HTML section (escaped) for the self-contained report."""
    head = "".join(f"<th>{c}</th>" for c in ("#", "candidate", "rating", "95% CI", "votes", "judges", "LLM",
                                             "audience", "blended"))
    body = "".join(
        f"<tr><td>{i}</td><td>{html.escape(r.candidate)}</td><td>{r.rating.rating:.0f}</td>"
        f"<td>{r.rating.low:.0f}-{r.rating.high:.0f}</td><td>{r.rating.games}</td><td>{_pct(r.human)}</td>"
        f"<td>{_pct(r.llm)}</td><td>{_pct(r.audience)}</td><td><b>{_pct(r.blended)}</b></td></tr>"
        for i, r in enumerate(table.rows, 1))
    lines = to_markdown(table).splitlines()
    notes = [html.escape(lines[2])] + ([html.escape(lines[-1])] if table.agreement else [])
    return (f"<h2>Arena: blind votes</h2><p>{notes[0]}</p><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>" + (f"<p>{notes[1]}</p>" if len(notes) > 1 else ""))


def report_sections(project: Project) -> tuple[str, str] | None:
    """(Markdown, HTML) of the arena standings for the leaderboard report; None before the first vote."""
    if not tables.any_vote(project.store):
        return None
    cfg = project.config.arena
    table = standings(project.store, cfg.weights, cfg.bootstrap_rounds)
    return to_markdown(table), to_html(table)
