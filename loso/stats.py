"""Statistics over subjects for LOSO tables and run comparisons.

Every function takes one value per *subject* (sessions and seeds already averaged within it): the
subject is the unit a cross-subject claim generalises over, so windows, trials or sessions are never
counted as independent samples here. The one exception, `binomial_p`, tests one subject on its own test
trials (never its windows: the windows of a trial are not independent). scipy is imported by the tests and
intervals that use it, so tables' captions and split statements read this module's constants without it.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
T_INTERVAL_BELOW = 30
EXACT_UP_TO = 50
PERMUTATION_RESAMPLES = 9999
PERMUTATION_SEED = 0


class Interval(NamedTuple):
    """A confidence interval of the mean and how it was computed ("" when NaN)."""

    low: float
    high: float
    method: str


class SignedRank(NamedTuple):
    """A Wilcoxon signed-rank p-value, its rank-biserial effect size and how p was computed ("" when NaN)."""

    p: float
    r: float
    method: str


def mean_ci(values: Sequence[float], bounds: tuple[float, float] = (-np.inf, np.inf)) -> Interval:
    """95 % CI of the mean of the finite values: Student t below 30 values, percentile bootstrap from 30 on.

    The percentile bootstrap covers the mean only ~85 % of the time at 5 subjects; t holds ~95 % there.
    A t interval can pass a score's range (e.g. 102 % accuracy): it is clipped to `bounds`.
    NaN with fewer than 2 values; (v, v) when every value is v.
    """
    values = _finite(values)
    if len(values) < 2:
        return Interval(float("nan"), float("nan"), "")
    method = "t" if len(values) < T_INTERVAL_BELOW else "percentile bootstrap"
    if np.ptp(values) == 0:
        return Interval(float(values[0]), float(values[0]), method)
    low, high = _t_interval(values) if method == "t" else _bootstrap_interval(values)
    return Interval(float(max(low, bounds[0])), float(min(high, bounds[1])), method)


def _t_interval(values: np.ndarray) -> tuple[float, float]:
    """Student t interval with n - 1 degrees of freedom."""
    from scipy import stats

    return stats.t.interval(CONFIDENCE, len(values) - 1, loc=values.mean(), scale=stats.sem(values))


def _bootstrap_interval(values: np.ndarray) -> tuple[float, float]:
    """Percentile bootstrap (9,999 resamples, fixed seed: the same table every time)."""
    from scipy import stats

    ci = stats.bootstrap((values,), np.mean, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=CONFIDENCE,
                         method="percentile", rng=np.random.default_rng(BOOTSTRAP_SEED)).confidence_interval
    return ci.low, ci.high


def signed_rank(differences: Sequence[float], alternative: str = "greater") -> SignedRank:
    """Wilcoxon signed-rank p-value and matched-pairs rank-biserial correlation of per-subject differences.

    Zero differences are split between the signs (`zero_method='zsplit'`), in the test and in the
    effect size alike; r = (R+ - R-) / (R+ + R-) lies in [-1, 1]. p is exact up to 50 subjects without
    ties or zeros, from 9,999 seeded sign flips up to 50 with them, and normal beyond. All differences
    zero: p = 1, r = 0. NaN with fewer than 2 subjects.
    """
    d = _finite(differences)
    d[np.isclose(d, 0)] = 0.0  # float noise from averaging sessions and seeds is a zero, in p and r alike
    if len(d) < 2:
        return SignedRank(float("nan"), float("nan"), "")
    if not d.any():
        return SignedRank(1.0, 0.0, "all differences zero")
    p, method = _wilcoxon_p(d, alternative)
    return SignedRank(p, _rank_biserial(d), method)


def _wilcoxon_p(d: np.ndarray, alternative: str) -> tuple[float, str]:
    """The p-value and its method's name: exact, permutation or normal, by sample size, ties and zeros.

    scipy's own "auto" falls back to the normal approximation from 14 subjects with ties or zeros.
    """
    from scipy import stats

    if len(d) > EXACT_UP_TO:
        p = stats.wilcoxon(d, alternative=alternative, zero_method="zsplit", method="asymptotic").pvalue
        return float(p), "normal approximation"
    if d.all() and len(np.unique(np.abs(d))) == len(d):
        return float(stats.wilcoxon(d, alternative=alternative, method="exact").pvalue), "exact"
    if 2 ** len(d) <= PERMUTATION_RESAMPLES:
        return _sign_flip_p(d, alternative), "exact (every sign flip)"
    return _sign_flip_p(d, alternative), f"permutation ({PERMUTATION_RESAMPLES} resamples)"


def _sign_flip_p(d: np.ndarray, alternative: str) -> float:
    """Wilcoxon p from seeded random sign flips of the zsplit ranks (every flip when 2^n <= 9,999).

    Equals `wilcoxon(d, zero_method='zsplit', method=PermutationMethod(9999, rng=0))`, but vectorised:
    scipy calls that statistic once per resample (~6 s at 15 subjects). Zeros stay zero under a flip,
    so their split half-ranks are a constant that R+ can leave out.
    """
    from scipy import stats

    ranks = stats.rankdata(np.abs(d))
    return float(stats.permutation_test((d,), lambda x, axis: ((x > 0) * ranks).sum(axis),
                                        permutation_type="samples", n_resamples=PERMUTATION_RESAMPLES,
                                        alternative=alternative, rng=PERMUTATION_SEED).pvalue)


def _rank_biserial(d: np.ndarray) -> float:
    """(R+ - R-) / (R+ + R-) with the ranks of zero differences split between the signs."""
    from scipy import stats

    ranks = stats.rankdata(np.abs(d))
    half_zero = ranks[d == 0].sum() / 2
    plus = ranks[d > 0].sum() + half_zero
    minus = ranks[d < 0].sum() + half_zero
    return float((plus - minus) / (plus + minus))


def _finite(values: Sequence[float]) -> np.ndarray:
    """The finite values as a float64 copy."""
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaNs stay NaN and do not count as tests)."""
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full_like(p, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    order = tested[np.argsort(p[tested])]
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * p[index]))
        adjusted[index] = running
    return adjusted


def binomial_p(hits: int, n: int, p0: float) -> float:
    """One-sided exact binomial p of at least `hits` correct of `n` independent items at chance rate `p0`; NaN
    without items or when chance is certain (p0 >= 1: one class, nothing to beat)."""
    from scipy import stats

    if n < 1 or not 0 <= p0 < 1:
        return float("nan")
    return float(stats.binom.sf(hits - 1, n, p0))


def items_to_reach(alpha: float, p0: float) -> int | None:
    """The fewest items at which an all-correct result reaches p <= `alpha` against chance `p0` (p = p0^n); None
    when it never can (p0 >= 1)."""
    if not 0 < p0 < 1:
        return None if p0 >= 1 else 1
    return max(1, math.ceil(math.log(alpha) / math.log(p0) - 1e-12))


def permutation_p(observed: float, null: Sequence[float]) -> float:
    """One-sided empirical p-value, (1 + #null >= observed) / (1 + #null): never 0, 1/(N+1) at best."""
    null = np.asarray(null, dtype=np.float64)
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or len(null) == 0:
        return float("nan")
    return float((1 + np.sum(null >= observed - 1e-9)) / (1 + len(null)))
