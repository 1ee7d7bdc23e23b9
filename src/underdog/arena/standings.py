"""Standings from the arena's votes: Bradley-Terry ratings with bootstrap intervals, the same with style held
equal (style control) and what the voters reward, win rates per voter group, the LLM judge's agreement with the
humans on the same pairs, and the league's blended final score.

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
    Estimate,
    Game,
    Rating,
    StyleControl,
    blended_scores,
    bradley_terry_ci,
    bradley_terry_style,
    cohen_kappa,
    percent_agreement,
    win_rates,
)
from underdog.evaluate.style import STYLE, style_differences, style_features
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
    styled: Rating | None = None  # the rating with style held equal (style control)


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
    style: StyleControl | None = None
    simulated: int = 0  # votes cast by the simulated panel (arena/simulated_panel.py), not by people

    @property
    def rewards(self) -> dict[str, Estimate]:
        """What the voters reward: each style feature's coefficient with its interval (style control)."""
        return self.style.coefficients if self.style else {}


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
    style = style_control(store, rounds)
    rows = [Row(c, r, components["human"].get(c), components["audience"].get(c), components["llm"].get(c),
                blended.get(c, math.nan), style.ratings.get(c) if style else None) for c, r in ratings.items()]
    rows.sort(key=lambda r: (-_nan_low(r.blended), -r.rating.rating))
    counts = dict(sorted(Counter(v["role"] for v in votes).items()))
    voters = {v["voter_id"] for v in votes}
    invited = tables.invited_voters(store)
    anonymous = len({v["voter_id"] for v in votes if v["role"] == "audience"} - invited)
    simulated = sum(bool(v["simulated"]) for v in votes)
    return Standings(rows, counts, len(voters), agreement(store), dict(weights), anonymous, style, simulated)


def style_control(store: Store, rounds: int = 100) -> StyleControl | None:
    """Bradley-Terry with the answers' style differences (length; list, header, bold counts) as covariates, over
    the votes that kept their answers' texts; None without such votes."""
    votes = tables.votes_with_texts(store)
    if not votes:
        return None
    games = [_game(v["cand_1"], v["cand_2"], v["winner"]) for v in votes]
    diffs = [style_differences(style_features(v["answer_1"]), style_features(v["answer_2"])) for v in votes]
    return bradley_terry_style(games, diffs, STYLE, rounds=rounds)


def _nan_low(x: float) -> float:
    return -math.inf if math.isnan(x) else x


def _pct(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def reward_text(name: str, e: Estimate) -> str:
    """One feature's effect in words: its coefficient, interval and what it means."""
    words = {"length": "longer answers", "lists": "more list items", "headers": "more headers",
             "bold": "more bold text"}
    more = " + ".join(words.get(part, part) for part in name.split(" + "))
    verdict = (f"rewards {more}" if e.low > 0 else f"penalises {more}" if e.high < 0 else
               "no clear effect (the interval includes 0)")
    together = " (these always came together here: their effects cannot be told apart)" if " + " in name else ""
    return f"{name}: {e.value:+.2f} (95% CI {e.low:+.2f} to {e.high:+.2f}): {verdict}{together}"


def _simulated_note(table: Standings) -> list[str]:
    if not table.simulated:
        return []
    total = sum(table.votes.values())
    return [f"SIMULATED: {table.simulated} of the {total} votes were cast by the simulated voter panel "
            "(arena/simulated_panel.py), not by people.", ""]


def to_markdown(table: Standings) -> str:
    """The standings as a Markdown section for the report."""
    w = table.weights
    lines = ["## Arena: blind votes", "",
             f"{sum(table.votes.values())} votes ({table.votes.get('judge', 0)} from judges, "
             f"{table.votes.get('audience', 0)} from the audience) by {table.voters} voters ({table.anonymous} "
             "anonymous: without an invite code or judge link). Blended score = "
             f"{w.get('human', 0):.0%} judges + {w.get('llm', 0):.0%} LLM judge + {w.get('audience', 0):.0%} audience "
             "(win rates, ties count half).", "", *_simulated_note(table),
             "| # | candidate | rating (95% CI) | style-controlled (95% CI) | votes | judges | LLM | audience | "
             "blended |", "|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(table.rows, 1):
        lines.append(f"| {i} | {r.candidate} | {_rating(r.rating)} | {_rating(r.styled)} | {r.rating.games} | "
                     f"{_pct(r.human)} | {_pct(r.llm)} | {_pct(r.audience)} | {_pct(r.blended)} |")
    a = table.agreement
    if a:
        lines += ["", f"LLM judge vs human votes on the same pairs: {_pct(a.percent)} agreement over {a.n} votes, "
                      f"Cohen's kappa {a.kappa:.2f}; without ties {_pct(a.percent_no_ties)} over {a.n_no_ties}."]
    if table.rewards:
        lines += ["", "### What your voters reward", "",
                  "Style control (as Chatbot Arena reports it): log-odds of winning per standard deviation more of "
                  "each feature than the other answer, with everything else held equal.", ""]
        lines += [f"- {reward_text(name, e)}" for name, e in table.rewards.items()]
    return "\n".join(lines) + "\n"


def _rating(r: Rating | None) -> str:
    return "-" if r is None else f"{r.rating:.0f} ({r.low:.0f}-{r.high:.0f})"


def to_html(table: Standings) -> str:
    """The standings as an HTML section (escaped) for the self-contained report."""
    head = "".join(f"<th>{c}</th>" for c in ("#", "candidate", "rating", "95% CI", "style-controlled", "votes",
                                             "judges", "LLM", "audience", "blended"))
    body = "".join(
        f"<tr><td>{i}</td><td>{html.escape(r.candidate)}</td><td>{r.rating.rating:.0f}</td>"
        f"<td>{r.rating.low:.0f}-{r.rating.high:.0f}</td><td>{_rating(r.styled)}</td><td>{r.rating.games}</td>"
        f"<td>{_pct(r.human)}</td><td>{_pct(r.llm)}</td><td>{_pct(r.audience)}</td><td><b>{_pct(r.blended)}</b></td>"
        "</tr>" for i, r in enumerate(table.rows, 1))
    lines = to_markdown(table).splitlines()
    simulated = "".join(f"<p><b>{html.escape(line)}</b></p>" for line in _simulated_note(table) if line)
    agreement = [line for line in lines if line.startswith("LLM judge vs human")]
    rewards = "".join(f"<li>{html.escape(reward_text(n, e))}</li>" for n, e in table.rewards.items())
    return (f"<h2>Arena: blind votes</h2><p>{html.escape(lines[2])}</p>{simulated}<table><thead><tr>{head}</tr>"
            f"</thead><tbody>{body}</tbody></table>" + "".join(f"<p>{html.escape(x)}</p>" for x in agreement)
            + (f"<h3>What your voters reward</h3><p>Style control: log-odds of winning per standard deviation more "
               f"of each feature, everything else held equal.</p><ul>{rewards}</ul>" if rewards else ""))


def report_sections(project: Project) -> tuple[str, str] | None:
    """(Markdown, HTML) of the arena standings for the leaderboard report; None before the first vote."""
    if not tables.any_vote(project.store):
        return None
    cfg = project.config.arena
    table = standings(project.store, cfg.weights, cfg.bootstrap_rounds)
    return to_markdown(table), to_html(table)
