"""Ratings from pairwise outcomes: Bradley-Terry with bootstrap intervals, judge-human agreement, blended score.

    games = [Game("small", "big", 1.0), Game("small", "big", 0.5), Game("big", "small", 1.0)]
    table = bradley_terry_ci(games, rounds=100)            # {name: Rating(rating, low, high, games)}
    kappa = cohen_kappa(llm_labels, human_labels)
    final = blended_scores({"human": wr_h, "llm": wr_l, "audience": wr_a}, {"human": .4, "llm": .4, "audience": .2})

A game's `score` is 1.0 when `a` won, 0.0 when `b` won and 0.5 for a tie (a "both are bad" vote is a tie, as in
Chatbot Arena). Ratings are on the Elo scale Chatbot Arena reports: 1000 + 400 * log10(strength), with the
geometric mean of the strengths fixed at 1, so a 400-point gap means 10:1 odds.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

ELO_BASE = 1000.0
ELO_SCALE = 400.0


@dataclass(frozen=True)
class Game:
    """One pairwise comparison: `score` is 1 (a won), 0 (b won) or 0.5 (tie)."""

    a: str
    b: str
    score: float


@dataclass(frozen=True)
class Rating:
    """A Bradley-Terry rating (Elo scale) with a bootstrap interval and the number of games behind it."""

    rating: float
    low: float
    high: float
    games: int


def bradley_terry(games: Sequence[Game], prior: float = 0.0, iterations: int = 10_000,
                  tol: float = 1e-10) -> dict[str, float]:
    """Maximum-likelihood Bradley-Terry strengths by Hunter's MM algorithm, as Elo-scale ratings.

    Args:
        games: the comparisons; a tie counts as half a win for each side.
        prior: virtual tied games each player plays against an average (strength 1) opponent; keeps ratings
            finite when someone won or lost every game (0 = plain maximum likelihood).
    """
    players = sorted({g.a for g in games} | {g.b for g in games})
    if not players:
        return {}
    index = {p: i for i, p in enumerate(players)}
    n = len(players)
    wins = np.full(n, prior / 2)
    pairs = np.zeros((n, n))
    for g in games:
        i, j = index[g.a], index[g.b]
        wins[i] += g.score
        wins[j] += 1.0 - g.score
        pairs[i, j] += 1
        pairs[j, i] += 1
    strength = np.ones(n)
    for _ in range(iterations):
        denom = (pairs / (strength[:, None] + strength[None, :])).sum(axis=1) + prior / (strength + 1.0)
        new = np.where(denom > 0, np.maximum(wins, 1e-300) / np.where(denom > 0, denom, 1.0), strength)
        if not prior:
            new = new / np.exp(np.log(new).mean())
        done = np.max(np.abs(np.log(new) - np.log(strength))) < tol
        strength = new
        if done:
            break
    strength = strength / np.exp(np.log(strength).mean())
    return {p: ELO_BASE + ELO_SCALE * math.log10(strength[index[p]]) for p in players}


def bradley_terry_ci(games: Sequence[Game], rounds: int = 100, confidence: float = 0.95, prior: float = 1.0,
                     seed: int = 0) -> dict[str, Rating]:
    """Ratings with percentile bootstrap intervals (games resampled with replacement `rounds` times)."""
    point = bradley_terry(games, prior=prior)
    counts: Counter[str] = Counter()
    for g in games:
        counts[g.a] += 1
        counts[g.b] += 1
    samples: dict[str, list[float]] = defaultdict(list)
    rng = random.Random(seed)
    for _ in range(rounds if games else 0):
        resampled = rng.choices(games, k=len(games))
        for name, value in bradley_terry(resampled, prior=prior, iterations=2000, tol=1e-8).items():
            samples[name].append(value)
    tail = (1 - confidence) / 2 * 100
    out = {}
    for name, value in point.items():
        low, high = (np.percentile(samples[name], [tail, 100 - tail]) if samples[name] else (value, value))
        out[name] = Rating(value, float(low), float(high), counts[name])
    return out


def expected_score(rating_a: float, rating_b: float) -> float:
    """P(a beats b) under Bradley-Terry for two Elo-scale ratings."""
    return 1.0 / (1.0 + 10 ** ((rating_b - rating_a) / ELO_SCALE))


def win_rates(games: Sequence[Game]) -> dict[str, float]:
    """(wins + 0.5 ties) / games for each player."""
    points: Counter[str] = Counter()
    played: Counter[str] = Counter()
    for g in games:
        points[g.a] += g.score
        points[g.b] += 1.0 - g.score
        played[g.a] += 1
        played[g.b] += 1
    return {p: points[p] / played[p] for p in sorted(played)}


def percent_agreement(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Share of items on which two raters gave the same label."""
    _check_paired(a, b)
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa: agreement corrected for chance, (p_o - p_e) / (1 - p_e).

    When chance agreement is already perfect (both raters used one and the same label) it returns 1.0.
    """
    _check_paired(a, b)
    n = len(a)
    observed = percent_agreement(a, b)
    count_a, count_b = Counter(a), Counter(b)
    chance = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if chance >= 1.0:
        return 1.0
    return (observed - chance) / (1.0 - chance)


def _check_paired(a: Sequence[Hashable], b: Sequence[Hashable]) -> None:
    if len(a) != len(b):
        raise ValueError(f"raters labelled different numbers of items ({len(a)} vs {len(b)})")
    if not a:
        raise ValueError("no items rated by both raters")


def blended_scores(components: Mapping[str, Mapping[str, float]],
                   weights: Mapping[str, float]) -> dict[str, float]:
    """Weighted sum of per-candidate scores (each in 0..1) across components such as human / llm / audience.

    Weights are renormalised over the components present for each candidate, so a candidate nobody in the
    audience voted on is scored on the other components alone rather than given zero.
    """
    unknown = set(components) - set(weights)
    if unknown:
        raise ValueError(f"no weight for component(s): {', '.join(sorted(unknown))}")
    candidates = sorted({c for scores in components.values() for c in scores})
    out = {}
    for cand in candidates:
        present = [(weights[k], scores[cand]) for k, scores in components.items() if cand in scores]
        total = sum(w for w, _ in present)
        out[cand] = sum(w * s for w, s in present) / total if total > 0 else float("nan")
    return out
