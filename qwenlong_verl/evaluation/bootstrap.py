"""Bootstrap confidence intervals for held-out accuracy, and two small curve helpers.

Why: a held-out set of a few hundred rows and a handful of RL seeds leave a lot of noise in "phase II beat SFT by
4 points". Every number the ablation report prints comes with a 95 % interval from here, so a reader can tell a
difference from noise. Pure numpy, no verl/torch; deterministic for a given ``seed``.

All intervals are *percentile* bootstraps: draw ``n_boot`` resamples, compute the statistic ``T*`` on each, and report
``[q_{(1-level)/2}(T*), q_{(1+level)/2}(T*)]`` around the plain estimate ``T`` on the data.

* :func:`mean_ci` – rows resampled with replacement: ``T = mean(x)``.
* :func:`paired_diff_ci` – two models on the *same* rows; row indices resampled jointly:
  ``T = mean(b) - mean(a) = mean(b - a)``. Pairing removes the row-difficulty noise both models share.
* :func:`clustered_mean_ci` – several seeds, each a list of per-row values. Two-level bootstrap: draw ``k`` seeds
  with replacement out of ``k``, then for every drawn seed its rows with replacement;
  ``T = (1/k) sum_s mean(x_s)`` (each seed weighs the same). The interval covers seed-to-seed spread *and* the
  finite eval set; with one seed it reduces to :func:`mean_ci`.
* :func:`clustered_diff_ci` – ``T = T_b - T_a`` with each arm resampled as in :func:`clustered_mean_ci`,
  independently of the other.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# At most this many float64 draws are held at once (about 32 MB); bigger bootstraps run in chunks.
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Interval:
    """A point estimate with a bootstrap interval.

    Attributes:
        estimate: the statistic on the data as observed (not the bootstrap mean).
        low: lower percentile bound.
        high: upper percentile bound.
        n: units resampled at the top level: rows for :func:`mean_ci` / :func:`paired_diff_ci`, seeds for the
            clustered functions (for a difference, the smaller arm's seed count).
        level: coverage, e.g. 0.95.
    """

    estimate: float
    low: float
    high: float
    n: int
    level: float

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)

    def excludes(self, value: float = 0.0) -> bool:
        """True when ``value`` lies outside ``[low, high]`` (a degenerate ``[0, 0]`` interval includes 0)."""
        return value < self.low or value > self.high

    def fmt(self, pct: bool = True, *, signed: bool = False) -> str:
        """Short text: ``"62.5 % [50.0, 75.0]"`` with ``pct``, else ``"0.625 [0.500, 0.750]"``.

        Args:
            pct: scale by 100 and print one decimal with a ``%`` sign.
            signed: print a leading ``+`` on a positive estimate (for differences).
        """
        scale, spec, unit = (100.0, ".1f", " %") if pct else (1.0, ".3f", "")
        sign = "+" if signed else ""
        return (f"{self.estimate * scale:{sign}{spec}}{unit} "
                f"[{self.low * scale:{spec}}, {self.high * scale:{spec}}]")


def _as_array(values: Sequence[float], what: str) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ValueError(f"{what}: no values")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what}: {int(np.sum(~np.isfinite(x)))} value(s) are NaN or infinite")
    return x


def _check(level: float, n_boot: int) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")


def _interval(estimate: float, draws: np.ndarray, n: int, level: float) -> Interval:
    alpha = (1.0 - level) / 2.0
    low, high = (float(q) for q in np.quantile(draws, [alpha, 1.0 - alpha]))
    # a degenerate bootstrap (all draws equal) can land a rounding error off the estimate: snap it back
    if math.isclose(low, estimate, abs_tol=1e-12):
        low = min(low, estimate)
    if math.isclose(high, estimate, abs_tol=1e-12):
        high = max(high, estimate)
    return Interval(estimate=float(estimate), low=low, high=high, n=int(n), level=float(level))


def _row_boot_means(x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` bootstrap means of ``x`` (rows drawn with replacement), computed in memory-bounded chunks."""
    n = x.size
    out = np.empty(count, dtype=float)
    step = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, count, step):
        stop = min(count, start + step)
        out[start:stop] = x[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return out


def mean_ci(values: Sequence[float], *, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> Interval:
    """Percentile bootstrap interval of ``mean(values)``.

    Args:
        values: per-row scores (0/1 correctness or floats).
        level: coverage of the interval.
        n_boot: bootstrap resamples.
        seed: RNG seed; the same inputs and seed give the same interval.

    Returns:
        :class:`Interval` with ``n = len(values)``.
    """
    _check(level, n_boot)
    x = _as_array(values, "mean_ci")
    draws = _row_boot_means(x, n_boot, np.random.default_rng(seed))
    return _interval(float(x.mean()), draws, x.size, level)


def paired_diff_ci(a: Sequence[float], b: Sequence[float], *, level: float = 0.95, n_boot: int = 2000,
                   seed: int = 0) -> Interval:
    """Interval of ``mean(b) - mean(a)`` for two models scored on the same rows (row ``i`` of ``a`` and ``b`` is
    the same question), resampling row indices jointly.

    Args:
        a: baseline per-row scores (e.g. the SFT model).
        b: compared per-row scores (e.g. phase II), same row order.
        level: coverage of the interval.
        n_boot: bootstrap resamples.
        seed: RNG seed.

    Raises:
        ValueError: the two lists differ in length (the message names both lengths).
    """
    if len(a) != len(b):
        raise ValueError(f"paired_diff_ci needs the same rows for both models: len(a)={len(a)}, len(b)={len(b)}")
    _check(level, n_boot)
    d = _as_array(b, "paired_diff_ci b") - _as_array(a, "paired_diff_ci a")
    draws = _row_boot_means(d, n_boot, np.random.default_rng(seed))
    return _interval(float(d.mean()), draws, d.size, level)


def _groups(groups: Sequence[Sequence[float]], what: str) -> list[np.ndarray]:
    if len(groups) == 0:
        raise ValueError(f"{what}: no groups (seeds)")
    return [_as_array(g, f"{what} group {i}") for i, g in enumerate(groups)]


def _clustered_draws(arrays: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Two-level bootstrap draws of the mean of seed means.

    ``slots[b, j]`` is the seed drawn for slot ``j`` of resample ``b``; every slot gets its own row resample of that
    seed (a seed drawn twice is resampled twice, independently). Draws are grouped by seed so unequal row counts
    need no padding.
    """
    k = len(arrays)
    slots = rng.integers(0, k, size=(n_boot, k))
    slot_means = np.empty((n_boot, k), dtype=float)
    for s, x in enumerate(arrays):
        where = slots == s
        count = int(where.sum())
        if count:
            slot_means[where] = _row_boot_means(x, count, rng)
    return slot_means.mean(axis=1)


def clustered_mean_ci(groups: Sequence[Sequence[float]], *, level: float = 0.95, n_boot: int = 2000,
                      seed: int = 0) -> Interval:
    """Two-level bootstrap interval of a mean over seeds: resample seeds, then rows within each drawn seed.

    Estimate: ``(1/k) sum_s mean(groups[s])`` (each seed weighs the same; equal to the pooled mean when every seed
    has the same rows).

    Args:
        groups: one list of per-row values per seed.
        level: coverage of the interval.
        n_boot: bootstrap resamples.
        seed: RNG seed.

    Returns:
        :class:`Interval` with ``n`` = number of seeds.
    """
    _check(level, n_boot)
    arrays = _groups(groups, "clustered_mean_ci")
    draws = _clustered_draws(arrays, n_boot, np.random.default_rng(seed))
    return _interval(float(np.mean([x.mean() for x in arrays])), draws, len(arrays), level)


def clustered_diff_ci(groups_a: Sequence[Sequence[float]], groups_b: Sequence[Sequence[float]], *,
                      level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> Interval:
    """Interval of ``T_b - T_a`` where ``T`` is the mean of seed means; each arm is resampled as in
    :func:`clustered_mean_ci`, independently of the other (a single-run baseline such as the SFT model is a list
    with one group: only its rows are resampled).

    The rows are not paired across arms, so the interval is on the conservative (wide) side when both arms were
    scored on the same questions.

    Args:
        groups_a: baseline arm, one list of per-row values per seed.
        groups_b: compared arm, same layout.
        level: coverage of the interval.
        n_boot: bootstrap resamples.
        seed: RNG seed.

    Returns:
        :class:`Interval` with ``n`` = the smaller of the two seed counts.
    """
    _check(level, n_boot)
    arrays_a = _groups(groups_a, "clustered_diff_ci a")
    arrays_b = _groups(groups_b, "clustered_diff_ci b")
    rng = np.random.default_rng(seed)
    draws = _clustered_draws(arrays_b, n_boot, rng) - _clustered_draws(arrays_a, n_boot, rng)
    estimate = float(np.mean([x.mean() for x in arrays_b]) - np.mean([x.mean() for x in arrays_a]))
    return _interval(estimate, draws, min(len(arrays_a), len(arrays_b)), level)


def smooth(xs: Sequence[float], window: int) -> list[float]:
    """Trailing moving average: ``out[i] = mean(xs[max(0, i - window + 1) : i + 1])``; the first points average
    what exists so far, so the output has the input's length and starts at ``xs[0]``.

    Args:
        xs: the series (e.g. training reward per step).
        window: points averaged, >= 1 (1 returns the input as floats).
    """
    if window < 1:
        raise ValueError(f"smooth window must be >= 1, got {window}")
    x = np.asarray(xs, dtype=float).ravel()
    if x.size == 0:
        return []
    csum = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(1, x.size + 1)
    start = np.maximum(0, idx - window)
    return ((csum[idx] - csum[start]) / (idx - start)).tolist()


def first_last_means(xs: Sequence[float], k: int) -> tuple[float, float]:
    """Mean of the first ``k`` and of the last ``k`` points, with ``k`` capped at ``len(xs) // 2`` so the two
    windows never overlap.

    Args:
        xs: the series, at least 2 points.
        k: window length, >= 1.

    Raises:
        ValueError: fewer than 2 points, or ``k < 1``.
    """
    if len(xs) < 2:
        raise ValueError(f"first_last_means needs at least 2 points, got {len(xs)}")
    if k < 1:
        raise ValueError(f"first_last_means window k must be >= 1, got {k}")
    k = min(k, len(xs) // 2)
    x = np.asarray(xs, dtype=float).ravel()
    return float(x[:k].mean()), float(x[-k:].mean())
