"""Ratings from pairwise outcomes: Bradley-Terry with bootstrap intervals, judge-human agreement, blended score.

    games = [Game("small", "big", 1.0), Game("small", "big", 0.5), Game("big", "small", 1.0)]
    table = bradley_terry_ci(games, rounds=100)            # {name: Rating(rating, low, high, games)}
    kappa = cohen_kappa(llm_labels, human_labels)
    styled = bradley_terry_style(games, style_diffs)       # ratings with style held equal, what voters reward
    tau = kendall_tau(ranks_by_judge, ranks_by_people)
    final = blended_scores({"human": wr_h, "llm": wr_l, "audience": wr_a}, {"human": .4, "llm": .4, "audience": .2})

A game's `score` is 1.0 when `a` won, 0.0 when `b` won and 0.5 for a tie (a "both are bad" vote is a tie, as in
Chatbot Arena). Ratings are on the Elo scale Chatbot Arena reports: 1000 + 400 * log10(strength), with the
geometric mean of the strengths fixed at 1, so a 400-point gap means 10:1 odds.

Style control (Chatbot Arena, 2024): the same model with the answers' style differences as covariates,
logit P(a beats b) = theta_a - theta_b + sum_k beta_k x_k, x_k the standardised normalised difference of feature
k (evaluate/style.py). The thetas are ratings with style held equal; beta_k says how much the voters reward one
standard deviation more of feature k. Fitted by Newton's method (`stats.logistic_fit`: a few players and four
features make a tiny problem; scikit-learn's lbfgs took ~0.3 s a fit, 100x longer), with the same virtual ties
as `bradley_terry_ci` to keep a clean sweep finite; bootstrap intervals over games.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from underdog.evaluate.stats import logistic_fit

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


def bradley_terry(games: Sequence[Game], prior: float = 0.0, iterations: int = 100,
                  tol: float = 1e-10) -> dict[str, float]:
    """Maximum-likelihood Bradley-Terry strengths (Newton's method), as Elo-scale ratings.

    Args:
        games: the comparisons; a tie counts as half a win for each side.
        prior: virtual tied games each player plays against an average (strength 1) opponent; keeps ratings
            finite when someone won or lost every game (0 = plain maximum likelihood).
    """
    players, a, b, score = _encode(games)
    if not players:
        return {}
    strength = _fit(a, b, score, len(players), prior, iterations, tol)
    return {p: float(r) for p, r in zip(players, _elo(strength), strict=True)}


def bradley_terry_ci(games: Sequence[Game], rounds: int = 100, confidence: float = 0.95, prior: float = 1.0,
                     seed: int = 0) -> dict[str, Rating]:
    """Ratings with percentile bootstrap intervals (games resampled with replacement `rounds` times)."""
    players, a, b, score = _encode(games)
    if not players:
        return {}
    n = len(players)
    point = _elo(_fit(a, b, score, n, prior))
    counts = np.bincount(a, minlength=n) + np.bincount(b, minlength=n)
    rng = np.random.default_rng(seed)
    samples = np.empty((rounds, n))
    for r in range(rounds):
        pick = rng.integers(0, len(score), size=len(score))
        samples[r] = _elo(_fit(a[pick], b[pick], score[pick], n, prior, tol=1e-8))
    tail = (1 - confidence) / 2 * 100
    low, high = (np.percentile(samples, [tail, 100 - tail], axis=0) if rounds else (point, point))
    return {p: Rating(float(point[k]), float(low[k]), float(high[k]), int(counts[k]))
            for k, p in enumerate(players)}


def _encode(games: Sequence[Game]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    players = sorted({g.a for g in games} | {g.b for g in games})
    index = {p: i for i, p in enumerate(players)}
    a = np.array([index[g.a] for g in games], dtype=int)
    b = np.array([index[g.b] for g in games], dtype=int)
    return players, a, b, np.array([g.score for g in games], dtype=float)


def _fit(a: np.ndarray, b: np.ndarray, score: np.ndarray, n: int, prior: float, iterations: int = 100,
         tol: float = 1e-10) -> np.ndarray:
    """Newton's method on log-strengths (the log-likelihood is concave); returns strengths, geometric mean 1.

    The prior adds `prior` virtual games per player, scored 0.5, against an opponent of strength 1. Without it
    the likelihood is flat along a common shift, so each step takes the least-norm solution.
    """
    wins = np.bincount(a, weights=score, minlength=n) + np.bincount(b, weights=1 - score, minlength=n)
    pairs = np.zeros((n, n))
    np.add.at(pairs, (a, b), 1.0)
    pairs += pairs.T
    theta = np.zeros(n)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(theta[None, :] - theta[:, None]))  # p[i, j] = P(i beats j)
        q = 1.0 / (1.0 + np.exp(-theta))  # P(i beats the prior's average opponent)
        grad = wins - (pairs * p).sum(axis=1) + prior * (0.5 - q)
        w = pairs * p * (1 - p)
        info = np.diag(w.sum(axis=1) + prior * q * (1 - q)) - w  # minus the Hessian
        step = np.clip(np.linalg.lstsq(info, grad, rcond=None)[0], -2.0, 2.0)
        theta += step
        if np.max(np.abs(step)) < tol:
            break
    return np.exp(theta - theta.mean())


def _elo(strength: np.ndarray) -> np.ndarray:
    return ELO_BASE + ELO_SCALE * np.log10(strength)


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


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap interval."""

    value: float
    low: float
    high: float


def bootstrap(statistic: Callable[[np.ndarray], float], n: int, rounds: int = 1000, seed: int = 0,
              confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of `statistic(indices)` over `rounds` resamples of range(n) with replacement (rounds
    where the statistic is undefined, NaN, are left out)."""
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, size=n)) for _ in range(rounds)]) if n else np.array([])
    values = values[~np.isnan(values)]
    if not values.size:
        return (math.nan, math.nan)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return (float(low), float(high))


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b between two scorings of the same items (ties allowed; scipy); NaN under 2 items or when
    one scoring is constant."""
    if len(x) != len(y):
        raise ValueError(f"scorings of different lengths ({len(x)} vs {len(y)})")
    if len(x) < 2:
        return math.nan
    from scipy.stats import kendalltau  # scipy.stats takes ~2 s to import: only calibration needs it

    return float(kendalltau(x, y).statistic)


@dataclass(frozen=True)
class StyleControl:
    """Ratings with style held equal, and each style feature's effect (log-odds per standard deviation of its
    normalised difference; > 0: voters reward more of it). A feature that never differs has no coefficient;
    features that always move together share one, named "lists + bold"."""

    ratings: dict[str, Rating]
    coefficients: dict[str, Estimate]
    games: int


def bradley_terry_style(games: Sequence[Game], style_diffs: Sequence[Sequence[float]], names: Sequence[str],
                        rounds: int = 100, prior: float = 1.0, seed: int = 0,
                        confidence: float = 0.95) -> StyleControl:
    """Bradley-Terry with style covariates: `style_diffs[i]` are game i's normalised differences (a minus b) of
    the features `names`; ratings on the Elo scale (mean 1000), coefficients with percentile bootstrap
    intervals (games resampled `rounds` times)."""
    players, a, b, score = _encode(games)
    if not players:
        return StyleControl({}, {}, 0)
    x = np.asarray(style_diffs, dtype=float).reshape(len(games), len(names))
    groups = _distinct_features(x)
    kept = [group[0] for group in groups]
    x = (x[:, kept] - x[:, kept].mean(axis=0)) / x[:, kept].std(axis=0)
    point = _style_fit(a, b, score, x, len(players), prior)
    counts = np.bincount(a, minlength=len(players)) + np.bincount(b, minlength=len(players))
    rng = np.random.default_rng(seed)
    samples = np.array([_style_fit(a[pick], b[pick], score[pick], x[pick], len(players), prior)
                        for pick in (rng.integers(0, len(score), size=len(score)) for _ in range(rounds))])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail], axis=0) if rounds else (point, point)
    ratings = {p: Rating(float(point[k]), float(low[k]), float(high[k]), int(counts[k]))
               for k, p in enumerate(players)}
    coefficients = {" + ".join(names[k] for k in group): Estimate(float(point[j]), float(low[j]), float(high[j]))
                    for j, group in enumerate(groups, start=len(players))}
    return StyleControl(ratings, coefficients, len(games))


def _distinct_features(x: np.ndarray) -> list[list[int]]:
    """The feature columns that vary, grouped where they move together (correlation > 0.999: e.g. answers whose
    list items and bold spans always come together), since their effects cannot be told apart."""
    groups: list[list[int]] = []
    for k in range(x.shape[1]):
        if x[:, k].std() == 0:
            continue
        same = next((g for g in groups if np.corrcoef(x[:, g[0]], x[:, k])[0, 1] > 0.999), None)
        if same is None:
            groups.append([k])
        else:
            same.append(k)
    return groups


def _style_fit(a: np.ndarray, b: np.ndarray, score: np.ndarray, x: np.ndarray, n: int, prior: float) -> np.ndarray:
    """Elo-scale ratings (mean 1000) then the style coefficients: logistic regression on +1/-1 player columns
    and the style columns, ties as targets of 1/2; `prior` virtual ties per player against an average opponent
    (a row with only that player's column), as `bradley_terry_ci` does."""
    rows = np.zeros((len(score), n + x.shape[1]))
    rows[np.arange(len(score)), a] += 1.0
    rows[np.arange(len(score)), b] -= 1.0
    rows[:, n:] = x
    virtual = np.hstack([np.eye(n), np.zeros((n, x.shape[1]))])
    weights = np.concatenate([np.ones(len(score)), np.full(n, prior)])
    coef = logistic_fit(np.vstack([rows, virtual]), np.concatenate([score, np.full(n, 0.5)]), l2=1e-9,
                        weights=weights)
    theta, beta = coef[:n], coef[n:]
    return np.concatenate([ELO_BASE + ELO_SCALE / math.log(10) * (theta - theta.mean()), beta])


def agreement_with_intervals(a: Sequence[Hashable], b: Sequence[Hashable], undecided: Hashable = "tie",
                             rounds: int = 1000, seed: int = 0) -> tuple[Estimate | None, Estimate | None]:
    """(accuracy without ties, Cohen's kappa) of two raters' labels, each with a percentile bootstrap interval
    over the items: accuracy counts only the items both labelled other than `undecided` (None when there is
    none), kappa all of them."""
    _check_paired(a, b)
    labels = sorted(set(a) | set(b), key=str)
    x = np.array([labels.index(v) for v in a])
    y = np.array([labels.index(v) for v in b])
    tie = labels.index(undecided) if undecided in labels else -1

    def accuracy(pick: np.ndarray) -> float:
        both = (x[pick] != tie) & (y[pick] != tie)
        return float((x[pick][both] == y[pick][both]).mean()) if both.any() else math.nan

    def kappa(pick: np.ndarray) -> float:
        n, k = len(pick), len(labels)
        observed = float((x[pick] == y[pick]).mean())
        chance = float((np.bincount(x[pick], minlength=k) * np.bincount(y[pick], minlength=k)).sum()) / (n * n)
        return 1.0 if chance >= 1.0 else (observed - chance) / (1.0 - chance)

    everything = np.arange(len(x))
    point = accuracy(everything)
    acc = None if math.isnan(point) else Estimate(point, *bootstrap(accuracy, len(x), rounds, seed))
    return acc, Estimate(kappa(everything), *bootstrap(kappa, len(x), rounds, seed))
