"""Statistics against values computed by hand (see the comments for the arithmetic)."""

from __future__ import annotations

import math

import pytest

from underdog.evaluate import stats


def test_wilson_interval_matches_the_league_numbers():
    # 44/50: p=.88, z^2=3.8415; centre (.88+.038415)/1.07683=.85289; margin 1.96*sqrt(.002112+.000384)/1.07683
    low, high = stats.wilson_interval(44, 50)
    assert (round(low, 3), round(high, 3)) == (0.762, 0.944)
    low, high = stats.wilson_interval(47, 50)
    assert (round(low, 3), round(high, 3)) == (0.838, 0.979)


def test_wilson_interval_edges():
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    low, high = stats.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)  # z^2/(n+z^2) = 3.8415/13.8415
    low, high = stats.wilson_interval(10, 10)
    assert high == pytest.approx(1.0) and low == pytest.approx(1 - 0.2775, abs=1e-4)


def test_win_rate_counts_ties_as_half():
    assert stats.win_rate(40, 4, 50) == pytest.approx(0.84)
    assert stats.win_rate(0, 10, 10) == 0.5


def test_tally_counts_its_own_n_and_interval():
    tally = stats.Tally(wins=40, ties=8, losses=2)  # (40 + 4) / 50: the league's 44 of 50
    assert tally.n == 50 and tally.win_rate == pytest.approx(0.88)
    assert tuple(round(x, 3) for x in tally.ci) == (0.762, 0.944)
    assert stats.Tally(0, 0, 0).win_rate == 0.0 and stats.Tally(0, 0, 0).ci == (0.0, 1.0)
    assert stats.win_rate(0, 0, 0) == 0.0


def test_paired_bootstrap_enumerable_case():
    # differences [0, 1]: resampled means are 0, .5, 1 with probabilities 1/4, 1/2, 1/4
    boot = stats.paired_bootstrap([1, 1], [1, 0], rounds=20_000, seed=0)
    assert boot.diff == 0.5 and boot.n == 2
    assert (boot.low, boot.high) == (0.0, 1.0)
    assert boot.p_better == pytest.approx(0.75 + 0.25 / 2, abs=0.01)  # P(>0) + P(=0)/2


def test_paired_bootstrap_fixed_seed_is_reproducible_and_sane():
    a = [1, 1, 0.5, 1, 0, 1, 1, 0.5, 1, 1]
    b = [0, 1, 0.5, 0, 0, 1, 0, 0.5, 1, 0]
    first = stats.paired_bootstrap(a, b, seed=7)
    assert first == stats.paired_bootstrap(a, b, seed=7)
    assert first.diff == pytest.approx(0.4)  # (1+0+0+1+0+0+1+0+0+1)/10
    # d has four 1s and six 0s: the interval of a mean of 10 Bernoulli(0.4) draws is about 0.1 .. 0.7
    assert 0.0 <= first.low <= 0.2 and 0.6 <= first.high <= 0.8
    assert first.p_better > 0.99
    same = stats.paired_bootstrap([1, 0, 1], [1, 0, 1])
    assert (same.diff, same.low, same.high, same.p_better) == (0.0, 0.0, 0.0, 0.5)


def test_questions_needed_two_proportions():
    # pbar=.91: (1.95996*sqrt(2*.91*.09) + 0.84162*sqrt(.88*.12+.94*.06))^2 / .06^2 = 1.28126/.0036 = 355.9
    assert stats.questions_needed(0.88, 0.94) == 356
    assert stats.questions_needed(0.5, 0.5) == math.inf


def test_paired_questions_needed():
    # d = [1,0,1,0]: mean .5, sd (ddof=1) = sqrt(1/3); ((1.95996+0.84162)*.57735/.5)^2 = 10.47 -> 11
    assert stats.paired_questions_needed([1, 0, 1, 0], [0, 0, 0, 0]) == 11
    assert stats.paired_questions_needed([1, 1], [1, 1]) == math.inf


def test_length_controlled_win_rate_removes_the_length_effect():
    # 10 questions where the candidate is longer (9 wins) and 2 where it is shorter (1 win, 1 loss).
    scores = [1] * 9 + [0] + [1, 0]
    len_c = [110] * 10 + [90] * 2
    len_r = [100] * 12
    # two symmetric feature values +x/-x: the fit is exact, so b = (logit .9 + logit .5)/2 = ln 3 -> 0.75
    lc = stats.length_controlled_win_rate(scores, len_c, len_r)
    assert lc == pytest.approx(0.75, abs=0.005)
    assert stats.win_rate(10, 0, 12) == pytest.approx(0.8333, abs=1e-4)


def test_length_controlled_equals_win_rate_without_length_difference():
    scores = [1, 1, 0.5, 0, 1]
    assert stats.length_controlled_win_rate(scores, [50] * 5, [50] * 5) == pytest.approx(0.7, abs=1e-3)
    # a candidate that wins everything stays finite and close to 1
    assert 0.95 < stats.length_controlled_win_rate([1] * 8, range(8), [3] * 8) <= 1.0


def test_length_controlled_win_rate_is_not_identifiable_when_length_separates_the_outcomes():
    # a judge that decides by length alone: every longer answer wins, every shorter one loses
    scores = [1, 1, 1, 0, 0, 0.5]
    len_c, len_r = [120, 150, 300, 80, 60, 100], [100] * 6
    assert stats.length_separates(scores, [c - r for c, r in zip(len_c, len_r, strict=True)])
    assert stats.length_controlled_win_rate(scores, len_c, len_r) is None
    # the same raw rate with lengths that do not separate: a number, within [0, 1], near the raw rate
    mixed = stats.length_controlled_win_rate(scores, [120, 80, 300, 150, 60, 100], len_r)
    assert mixed is not None and 0.0 <= mixed <= 1.0 and abs(mixed - stats.win_rate(3, 1, 6)) < 0.2
    # only wins (or only losses): nothing to separate
    assert not stats.length_separates([1, 1, 0.5], [5, 10, -3])
    assert stats.length_controlled_win_rate([0, 0, 0], [10, 20, 30], [50] * 3) < 0.05
    # outcomes vary but every candidate answer is longer: equal length is an extrapolation (this gave 1.5%)
    one_win = [0.5] * 7 + [1]
    longer = [300, 310, 200, 305, 295, 300, 290, 320]
    assert stats.length_controlled_win_rate(one_win, longer, [15] * 8) is None
    # with some answers of equal length: ties there, the one win came with length -> about 0.5, below the raw 56%
    assert 0.45 < stats.length_controlled_win_rate(one_win, [15, 16, 14] + longer[3:], [15] * 8) < 0.5625
