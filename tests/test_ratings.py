"""Ratings checked against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from underdog.evaluate.ratings import (
    Game,
    agreement_with_intervals,
    blended_scores,
    bootstrap,
    bradley_terry,
    bradley_terry_ci,
    bradley_terry_style,
    cohen_kappa,
    expected_score,
    kendall_tau,
    percent_agreement,
    win_rates,
)
from underdog.evaluate.style import style_differences, style_features


def games(a: str, b: str, a_wins: int, b_wins: int, ties: int = 0) -> list[Game]:
    return [Game(a, b, 1.0)] * a_wins + [Game(a, b, 0.0)] * b_wins + [Game(a, b, 0.5)] * ties


def test_two_players_three_to_one() -> None:
    # MLE: p(A beats B) = 3/4 -> strength ratio 3 -> 400*log10(3) = 190.85 Elo points, centred on 1000.
    ratings = bradley_terry(games("A", "B", 3, 1))
    gap = 400 * math.log10(3)
    assert ratings["A"] == pytest.approx(1000 + gap / 2, abs=1e-6)
    assert ratings["B"] == pytest.approx(1000 - gap / 2, abs=1e-6)
    assert expected_score(ratings["A"], ratings["B"]) == pytest.approx(0.75)


def test_three_players_hand_computed() -> None:
    # With strengths 4:2:1 the expected wins are A-B 2/3, B-C 2/3, A-C 4/5. Observing exactly those counts
    # (2-1, 2-1, 4-1) satisfies the likelihood equations wins_i = sum_j n_ij s_i / (s_i + s_j), e.g. for A:
    # 6 = 3 * 4/6 + 5 * 4/5, so the MLE is 4:2:1 -> ratings 1000 + 400 log10(s / cbrt(8)).
    data = games("A", "B", 2, 1) + games("B", "C", 2, 1) + games("C", "A", 1, 4)
    ratings = bradley_terry(data)
    expected = {name: 1000 + 400 * math.log10(s / 2.0) for name, s in {"A": 4, "B": 2, "C": 1}.items()}
    for name, value in expected.items():
        assert ratings[name] == pytest.approx(value, abs=1e-6)
    assert ratings["A"] - ratings["B"] == pytest.approx(400 * math.log10(2), abs=1e-6)


def test_ties_count_half_and_order_does_not_matter() -> None:
    assert bradley_terry(games("A", "B", 0, 0, ties=5)) == pytest.approx({"A": 1000.0, "B": 1000.0})
    # A tie is half a win each: 1 win + 2 ties vs 0 wins + 2 ties is a 2:1 record.
    r = bradley_terry(games("A", "B", 1, 0, ties=2))
    assert r["A"] - r["B"] == pytest.approx(400 * math.log10(2), abs=1e-6)
    swapped = bradley_terry([Game(g.b, g.a, 1 - g.score) for g in games("A", "B", 1, 0, ties=2)])
    assert swapped == pytest.approx(r)


def test_prior_keeps_a_clean_sweep_finite_and_shrinks() -> None:
    sweep = games("A", "B", 5, 0)
    r = bradley_terry(sweep, prior=1.0)
    assert 1000 < r["A"] < 1400 and r["B"] == pytest.approx(2000 - r["A"])
    # More prior -> closer to equal.
    assert bradley_terry(sweep, prior=4.0)["A"] < r["A"]


def test_bootstrap_interval_contains_estimate_and_narrows_with_data() -> None:
    small = games("A", "B", 6, 4) + games("B", "C", 6, 4) + games("A", "C", 7, 3)
    big = small * 10
    ci_small = bradley_terry_ci(small, rounds=60, seed=1)
    ci_big = bradley_terry_ci(big, rounds=60, seed=1)
    for name in "ABC":
        assert ci_small[name].low <= ci_small[name].rating <= ci_small[name].high
        assert ci_big[name].high - ci_big[name].low < ci_small[name].high - ci_small[name].low
    assert ci_big["A"].games == 200
    assert ci_big["A"].rating > ci_big["B"].rating > ci_big["C"].rating
    assert bradley_terry_ci(small, rounds=20, seed=1) == bradley_terry_ci(small, rounds=20, seed=1)


def test_win_rates() -> None:
    assert win_rates(games("A", "B", 2, 1, ties=1)) == {"A": 0.625, "B": 0.375}


def test_percent_agreement_and_kappa_hand_computed() -> None:
    # Wikipedia's example: 50 items, yes/yes 20, yes/no 5, no/yes 10, no/no 15.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert percent_agreement(a, b) == pytest.approx(0.7)
    assert cohen_kappa(a, b) == pytest.approx(0.4)  # p_o = .7, p_e = .5*.6 + .5*.4 = .5
    # Three labels: p_o = 3/4; p_e = (2*1 + 1*2 + 1*1) / 16 = 5/16 -> kappa = (12/16 - 5/16) / (11/16) = 7/11.
    assert cohen_kappa(["a", "a", "b", "tie"], ["a", "b", "b", "tie"]) == pytest.approx(7 / 11)
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)
    assert cohen_kappa(["a", "a"], ["a", "a"]) == 1.0
    with pytest.raises(ValueError, match="different numbers"):
        cohen_kappa(["a"], ["a", "b"])


def test_blended_scores_default_league_weights() -> None:
    weights = {"human": 0.4, "llm": 0.4, "audience": 0.2}
    components = {"human": {"x": 1.0, "y": 0.0}, "llm": {"x": 0.5, "y": 0.5}, "audience": {"x": 0.0}}
    scores = blended_scores(components, weights)
    assert scores["x"] == pytest.approx(0.4 * 1.0 + 0.4 * 0.5 + 0.2 * 0.0)
    assert scores["y"] == pytest.approx((0.4 * 0.0 + 0.4 * 0.5) / 0.8)  # no audience votes: renormalised
    with pytest.raises(ValueError, match="no weight"):
        blended_scores({"jury": {"x": 1.0}}, weights)


def test_agrees_with_hunters_mm_algorithm_on_random_games() -> None:
    """An independent fit (Hunter's MM updates, plain Python) lands on the same maximum-likelihood ratings."""
    import random

    rng = random.Random(3)
    players = ["w", "x", "y", "z"]
    truth = {"w": 3.0, "x": 1.5, "y": 1.0, "z": 0.5}
    data = []
    for _ in range(400):
        a, b = rng.sample(players, 2)
        u = rng.random()
        data.append(Game(a, b, 0.5 if u < 0.1 else 1.0 if u < 0.1 + 0.9 * truth[a] / (truth[a] + truth[b]) else 0.0))
    s = dict.fromkeys(players, 1.0)
    for _ in range(1000):
        new = {}
        for p in players:
            wins = sum(g.score if g.a == p else 1 - g.score for g in data if p in (g.a, g.b))
            new[p] = wins / sum(1 / (s[g.a] + s[g.b]) for g in data if p in (g.a, g.b))
        mean = math.exp(sum(math.log(v) for v in new.values()) / len(new))
        s = {p: v / mean for p, v in new.items()}
    ours = bradley_terry(data)
    for p in players:
        assert ours[p] == pytest.approx(1000 + 400 * math.log10(s[p]), abs=1e-3)
    assert ours["w"] > ours["x"] > ours["z"]


def test_bradley_terry_with_a_style_covariate_hand_computed() -> None:
    # A beats B 3 of 4 times when A's answer is the longer (normalised length difference +1/3, standardised to +1)
    # and 2 of 4 when it is the shorter (-1): logit = d + beta = ln 3 and d - beta = 0, so beta = d = ln(3)/2:
    # a style coefficient of 0.549 and a rating gap of 400 log10(3) / 2 = 95.4 points with style held equal.
    data = games("A", "B", 3, 1) + games("A", "B", 2, 2)
    diffs = [[1 / 3, 0.0]] * 4 + [[-1 / 3, 0.0]] * 4
    fit = bradley_terry_style(data, diffs, ["length", "lists"], rounds=10, prior=0.0)
    assert fit.coefficients["length"].value == pytest.approx(math.log(3) / 2, abs=1e-6)
    assert "lists" not in fit.coefficients  # never differs: no coefficient
    gap = 400 * math.log10(3) / 2
    assert fit.ratings["A"].rating == pytest.approx(1000 + gap / 2, abs=1e-4)
    assert fit.ratings["B"].rating == pytest.approx(1000 - gap / 2, abs=1e-4)
    # Without style differences it is plain Bradley-Terry (5 wins, 3 losses).
    plain = bradley_terry_style(data, [[0.0, 0.0]] * 8, ["length", "lists"], rounds=0, prior=0.0)
    assert plain.ratings["A"].rating == pytest.approx(bradley_terry(data)["A"], abs=1e-4) and not plain.coefficients


def test_style_control_separates_a_length_effect_from_the_candidates() -> None:
    # The longer answer wins 3:1 whoever gives it; each candidate is longer half the time: equal ratings (which the
    # prior's virtual ties, at x = 0, leave alone) and beta = logit(3/4) = ln 3 per standard deviation (x = +-1),
    # whose bootstrap interval excludes 0 with this much data.
    data = (games("A", "B", 30, 10) + games("A", "B", 10, 30))
    diffs = [[0.5]] * 40 + [[-0.5]] * 40
    fit = bradley_terry_style(data, diffs, ["length"], rounds=50)
    assert fit.ratings["A"].rating == pytest.approx(1000, abs=1e-6) and fit.coefficients["length"].low > 0
    assert fit.coefficients["length"].value == pytest.approx(math.log(3), abs=1e-6)


def test_style_features_and_normalised_differences() -> None:
    text = "## Fees\n- **$45** by mail\n- $50 in person\n1. Fill in form B-12\nPlain __bold__ line"
    assert style_features(text) == {"length": float(len(text)), "lists": 3.0, "headers": 1.0, "bold": 2.0}
    a, b = style_features("x" * 30), style_features("y" * 10)
    assert style_differences(a, b) == [pytest.approx(0.5), 0.0, 0.0, 0.0]  # (30 - 10) / (30 + 10); 0/0 -> 0


def test_kendall_tau_hand_computed() -> None:
    # 1,2,3,4 vs 1,3,2,4: 5 concordant pairs, 1 discordant -> (5 - 1) / 6.
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau([1], [1]))


def test_agreement_with_intervals() -> None:
    # Accuracy without ties: items 1-3 decided by both, 2 agree -> 2/3; kappa as the textbook case above: 7/11.
    people = ["a", "a", "b", "tie"]
    judge = ["a", "b", "b", "tie"]
    accuracy, kappa = agreement_with_intervals(people, judge, rounds=200)
    assert accuracy.value == pytest.approx(2 / 3) and kappa.value == pytest.approx(7 / 11)
    assert accuracy.low <= accuracy.value <= accuracy.high and kappa.low <= kappa.value <= kappa.high
    many_acc, many_kappa = agreement_with_intervals(people * 50, judge * 50, rounds=200)
    assert many_kappa.value == pytest.approx(7 / 11) and many_kappa.high - many_kappa.low < kappa.high - kappa.low
    assert agreement_with_intervals(["tie"], ["a"])[0] is None  # nothing both decided


def test_bootstrap_percentile_interval_of_a_mean() -> None:
    values = np.array([0.0] * 50 + [1.0] * 50)
    low, high = bootstrap(lambda pick: float(values[pick].mean()), len(values), rounds=2000, seed=3)
    assert low == pytest.approx(0.5 - 1.96 * 0.05, abs=0.02) and high == pytest.approx(0.5 + 1.96 * 0.05, abs=0.02)


def test_style_features_that_always_move_together_share_one_coefficient() -> None:
    data = games("A", "B", 3, 1) + games("A", "B", 2, 2)
    diffs = [[1 / 3, 1.0, 0.0, 1.0]] * 4 + [[-1 / 3, -1.0, 0.0, -1.0]] * 4  # lists and bold: the same differences
    fit = bradley_terry_style(data, diffs, ["length", "lists", "headers", "bold"], rounds=0, prior=0.0)
    assert list(fit.coefficients) == ["length + lists + bold"]
    assert fit.coefficients["length + lists + bold"].value == pytest.approx(math.log(3) / 2, abs=1e-6)
