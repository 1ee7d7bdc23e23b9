"""The statistics of judged comparisons, each checked in tests against hand-computed values.

    wilson_interval(44, 50)                  -> (0.762, 0.944)
    win_rate(wins=40, ties=4, n=50)          -> 0.84
    paired_bootstrap(scores_a, scores_b)     -> mean difference and its 95% interval
    questions_needed(0.88, 0.94)             -> 356 (two proportions, 80% power, alpha 0.05)
    length_controlled_win_rate(prefs, len_a, len_b)   -> a rate, or None when length separates the outcomes

A per-question score is 1 (candidate preferred), 0.5 (tie) or 0 (reference preferred).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported by the functions that use it: not on the judge's path to its first call
    import numpy as np

norm = NormalDist()  # the standard normal (stdlib: no scipy import on the judge's start-up path)
Z95 = norm.inv_cdf(0.975)


def win_rate(wins: float, ties: float, n: int) -> float:
    """(wins + ties/2) / n; 0.0 when there is nothing to count."""
    return (wins + ties / 2) / n if n else 0.0


@dataclass(frozen=True)
class Tally:
    """Wins, ties and losses of one side over the other: its win rate (a tie counts half) with a Wilson interval."""

    wins: int
    ties: int
    losses: int

    @property
    def n(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def win_rate(self) -> float:
        return win_rate(self.wins, self.ties, self.n)

    @property
    def ci(self) -> tuple[float, float]:
        return wilson_interval(self.wins + self.ties / 2, self.n)


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (successes may be fractional: a tie counts as half a win)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes <= 0 else max(0.0, center - margin)  # exact at the edges, not 1e-17 off
    high = 1.0 if successes >= n else min(1.0, center + margin)
    return (low, high)


@dataclass(frozen=True)
class Bootstrap:
    """A paired bootstrap of mean(a - b): the observed difference, its interval, and P(resampled diff > 0)."""

    diff: float
    low: float
    high: float
    p_better: float
    n: int


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, rounds: int = 10_000, seed: int = 0,
                     level: float = 0.95) -> Bootstrap:
    """Resample questions (the same ones for both candidates) to get an interval of mean(a) - mean(b)."""
    import numpy as np
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size == 0:
        return Bootstrap(0.0, 0.0, 0.0, 0.5, 0)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(rounds, d.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    p_better = float((means > 0).mean() + (means == 0).mean() / 2)
    return Bootstrap(float(d.mean()), float(low), float(high), p_better, int(d.size))


def questions_needed(p1: float, p2: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Questions per candidate to tell win rates p1 and p2 apart (two-sided test of two proportions)."""
    if p1 == p2:
        return math.inf
    za, zb = norm.inv_cdf(1 - alpha / 2), norm.inv_cdf(power)
    pbar = (p1 + p2) / 2
    root = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root**2 / (p1 - p2) ** 2)


def paired_questions_needed(a: Sequence[float], b: Sequence[float], *, alpha: float = 0.05,
                            power: float = 0.8) -> float:
    """Questions needed for a paired test of mean(a - b) != 0, from the observed per-question differences."""
    import numpy as np
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size < 2 or d.mean() == 0:
        return math.inf
    sd = float(d.std(ddof=1))
    if sd == 0:
        return float(d.size)  # every question already agrees on the difference
    za, zb = norm.inv_cdf(1 - alpha / 2), norm.inv_cdf(power)
    return math.ceil(((za + zb) * sd / abs(d.mean())) ** 2)


def length_controlled_win_rate(scores: Sequence[float], len_candidate: Sequence[float],
                               len_reference: Sequence[float], *, l2: float = 1e-4) -> float | None:
    """AlpacaEval-style: fit P(candidate preferred) = sigmoid(b + w * tanh(standardized length difference)),
    then predict at zero length difference: sigmoid(b). Ties are targets of 0.5. Without any length difference
    this is the plain win rate. None ("not identifiable", see `length_confounded`) when the data cannot say what
    happens at equal length."""
    import numpy as np
    y = np.asarray(scores, dtype=float)
    if y.size == 0:
        return 0.0
    diff = np.asarray(len_candidate, dtype=float) - np.asarray(len_reference, dtype=float)
    if length_confounded(y, diff):
        return None
    sd = diff.std()
    x = np.tanh(diff / sd) if sd > 0 else np.zeros_like(diff)
    b, _ = logistic_fit(np.column_stack([np.ones_like(x), x]), y, l2)
    return float(_sigmoid(b))


def length_confounded(scores: Sequence[float], length_diff: Sequence[float]) -> bool:
    """Whether the outcomes vary but length leaves the rate at equal length unidentified: a length threshold
    separates wins from losses (the regression has no finite solution), or every answer pair differs in length
    the same way (equal length lies outside the data, so the rate there is an extrapolation: 1 win and 7 ties,
    all longer, gave 1.5%)."""
    import numpy as np
    y, d = np.asarray(scores, dtype=float), np.asarray(length_diff, dtype=float)
    if y.size == 0 or np.all(y == y[0]):
        return False
    return length_separates(y, d) or bool(np.all(d > 0) or np.all(d < 0))


def length_separates(scores: Sequence[float], length_diff: Sequence[float]) -> bool:
    """Whether a length threshold puts every win on one side and every loss on the other (both present)."""
    import numpy as np
    y, d = np.asarray(scores, dtype=float), np.asarray(length_diff, dtype=float)
    wins, losses = d[y > 0.5], d[y < 0.5]
    if not wins.size or not losses.size:
        return False
    return bool(wins.min() > losses.max() or wins.max() < losses.min())


def _sigmoid(z: np.ndarray | float) -> np.ndarray | float:
    import numpy as np
    return 1 / (1 + np.exp(-z))


def logistic_fit(features: np.ndarray, y: np.ndarray, l2: float, steps: int = 100,
                 weights: np.ndarray | None = None) -> np.ndarray:
    """Logistic regression with fractional targets (and optional row weights) by Newton's method (IRLS), with
    a small L2 penalty so that a candidate winning everything still gives finite weights."""
    import numpy as np
    beta = np.zeros(features.shape[1])
    penalty = l2 * np.eye(features.shape[1])
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    for _ in range(steps):
        p = _sigmoid(features @ beta)
        grad = features.T @ (w * (y - p)) - penalty @ beta
        hessian = features.T @ (features * (w * p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian, grad)
        beta = beta + step
        if np.abs(step).max() < 1e-10:
            break
    return beta
