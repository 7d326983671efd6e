"""Bootstrap intervals (qwenlong_verl.evaluation.bootstrap): behaviour a wrong resampler would break."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qwenlong_verl.evaluation.bootstrap import (
    Interval,
    clustered_diff_ci,
    clustered_mean_ci,
    first_last_means,
    mean_ci,
    paired_diff_ci,
    smooth,
)


def _bernoulli(p: float, n: int, seed: int) -> list[int]:
    return (np.random.default_rng(seed).random(n) < p).astype(int).tolist()


def test_mean_ci_contains_estimate_and_shrinks_with_rows():
    small = mean_ci(_bernoulli(0.6, 40, 1))
    big = mean_ci(_bernoulli(0.6, 400, 1))
    for iv in (small, big):
        assert iv.low <= iv.estimate <= iv.high
        assert 0.0 <= iv.low < iv.high <= 1.0
    assert big.high - big.low < small.high - small.low
    assert small.n == 40 and small.level == 0.95
    # a 95 % interval around p=0.5 on 400 rows is about +-4.9 points
    half = (mean_ci([1, 0] * 200).high - mean_ci([1, 0] * 200).low) / 2
    assert 0.035 < half < 0.065


def test_higher_level_is_wider():
    x = _bernoulli(0.5, 100, 2)
    assert mean_ci(x, level=0.99).high - mean_ci(x, level=0.99).low > mean_ci(x, level=0.8).high - mean_ci(
        x, level=0.8).low


def test_paired_large_difference_excludes_zero_identical_pair_centres_on_zero():
    a = _bernoulli(0.3, 200, 3)
    b = _bernoulli(0.7, 200, 4)
    win = paired_diff_ci(a, b)
    assert win.estimate == pytest.approx(np.mean(b) - np.mean(a))
    assert win.low > 0 and win.excludes(0.0)
    same = paired_diff_ci(a, a)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    assert not same.excludes(0.0)
    # same marginal accuracy, different rows right: interval straddles 0
    c = list(reversed(a))
    swap = paired_diff_ci(a, c)
    assert swap.low < 0 < swap.high


def test_pairing_is_tighter_than_independent_rows():
    """Two models that agree on most rows: the paired interval must be far narrower than the unpaired one."""
    a = _bernoulli(0.5, 200, 5)
    b = list(a)
    for i in range(0, 200, 20):  # b additionally gets 10 rows right / wrong
        b[i] = 1 - b[i]
    paired = paired_diff_ci(a, b)
    unpaired = clustered_diff_ci([a], [b])
    assert paired.high - paired.low < 0.5 * (unpaired.high - unpaired.low)


def test_clustered_wider_when_seeds_disagree_same_pooled_mean():
    agree = [[1, 0] * 100, [0, 1] * 100, [1, 1, 0, 0] * 50]  # every seed 50 %
    disagree = [[1] * 170 + [0] * 30, [1] * 100 + [0] * 100, [1] * 30 + [0] * 170]  # 85 %, 50 %, 15 %
    ia, idis = clustered_mean_ci(agree), clustered_mean_ci(disagree)
    assert ia.estimate == pytest.approx(0.5) and idis.estimate == pytest.approx(0.5)
    assert ia.n == 3
    assert idis.high - idis.low > 3 * (ia.high - ia.low)
    # agreeing seeds: as wide as a row bootstrap of the pooled 600 rows, give or take
    pooled = mean_ci([v for g in agree for v in g])
    assert (ia.high - ia.low) == pytest.approx(pooled.high - pooled.low, rel=0.35)


def test_clustered_one_seed_is_a_row_bootstrap_and_unequal_lengths_work():
    x = _bernoulli(0.4, 150, 6)
    one = clustered_mean_ci([x])
    rows = mean_ci(x)
    assert one.estimate == rows.estimate
    assert (one.high - one.low) == pytest.approx(rows.high - rows.low, rel=0.2)
    uneven = clustered_mean_ci([[1, 1, 1, 0], [0, 0]])
    assert uneven.estimate == pytest.approx((0.75 + 0.0) / 2)  # each seed weighs the same


def test_clustered_diff_clear_win_and_null():
    base = [_bernoulli(0.3, 200, s) for s in range(3)]
    win = [_bernoulli(0.6, 200, 10 + s) for s in range(3)]
    null = [_bernoulli(0.3, 200, 20 + s) for s in range(3)]
    assert clustered_diff_ci(base, win).low > 0
    iv = clustered_diff_ci(base, null)
    assert iv.low < 0 < iv.high and not iv.excludes(0.0)
    assert clustered_diff_ci(base, win).estimate == pytest.approx(np.mean(win) - np.mean(base))


def test_determinism_by_seed():
    x = _bernoulli(0.5, 60, 7)
    assert mean_ci(x, seed=3) == mean_ci(x, seed=3)
    assert mean_ci(x, seed=3) != mean_ci(x, seed=4)
    g = [x, x[::-1], x[:30]]
    assert clustered_mean_ci(g, seed=1) == clustered_mean_ci(g, seed=1)
    assert clustered_diff_ci(g, g[:2], seed=1) == clustered_diff_ci(g, g[:2], seed=1)


def test_interval_dict_and_fmt():
    iv = Interval(estimate=0.625, low=0.5, high=0.75, n=8, level=0.95)
    assert iv.fmt() == "62.5 % [50.0, 75.0]"
    assert iv.fmt(pct=False) == "0.625 [0.500, 0.750]"
    assert Interval(0.05, -0.01, 0.1, 3, 0.95).fmt(signed=True) == "+5.0 % [-1.0, 10.0]"
    assert json.loads(json.dumps(iv.as_dict())) == {"estimate": 0.625, "low": 0.5, "high": 0.75, "n": 8,
                                                      "level": 0.95}
    with pytest.raises(AttributeError):
        iv.low = 0.0  # type: ignore[misc]


def test_smooth_hand_example():
    assert smooth([1, 2, 3, 4, 5], 3) == pytest.approx([1.0, 1.5, 2.0, 3.0, 4.0])
    assert smooth([4, 0, 2], 1) == [4.0, 0.0, 2.0]
    assert smooth([2, 4], 10) == pytest.approx([2.0, 3.0])
    assert smooth([], 3) == []


def test_first_last_means():
    assert first_last_means([1, 2, 3, 4, 5, 6], 2) == (1.5, 5.5)
    assert first_last_means([1, 2, 3, 4, 5], 10) == (1.5, 4.5)  # k capped at 5 // 2 = 2
    assert first_last_means([0, 1], 5) == (0.0, 1.0)


def test_errors():
    with pytest.raises(ValueError, match=r"len\(a\)=3, len\(b\)=4"):
        paired_diff_ci([1, 0, 1], [1, 0, 1, 1])
    with pytest.raises(ValueError, match="no values"):
        mean_ci([])
    with pytest.raises(ValueError, match="NaN"):
        mean_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="level"):
        mean_ci([1, 0], level=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        mean_ci([1, 0], n_boot=0)
    with pytest.raises(ValueError, match="no groups"):
        clustered_mean_ci([])
    with pytest.raises(ValueError, match="group 1"):
        clustered_diff_ci([[1, 0]], [[1], []])
    with pytest.raises(ValueError, match="at least 2"):
        first_last_means([1.0], 1)
    with pytest.raises(ValueError, match="window"):
        smooth([1, 2], 0)
