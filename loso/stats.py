"""Statistics over subjects for LOSO tables and run comparisons.

Every function takes one value per *subject* (sessions and seeds already averaged within it): the
subject is the unit a cross-subject claim generalises over, so windows, trials or sessions are never
counted as independent samples here.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats

BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


def bootstrap_ci(values: Sequence[float]) -> tuple[float, float]:
    """Percentile bootstrap 95 % CI of the mean (9,999 resamples, fixed seed: the same table every time)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    if np.ptp(values) == 0:
        return float(values[0]), float(values[0])
    ci = stats.bootstrap((values,), np.mean, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=CONFIDENCE,
                         method="percentile", rng=np.random.default_rng(BOOTSTRAP_SEED)).confidence_interval
    return float(ci.low), float(ci.high)


def signed_rank(differences: Sequence[float], alternative: str = "greater") -> tuple[float, float]:
    """Wilcoxon signed-rank p-value and matched-pairs rank-biserial correlation of per-subject differences.

    Zero differences are split between the signs (`zero_method='zsplit'`), in the test and in the
    effect size alike; r = (R+ - R-) / (R+ + R-) lies in [-1, 1]. NaN with fewer than 2 subjects or
    when every difference is zero.
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) < 2 or np.allclose(d, 0):
        return float("nan"), float("nan")
    p = float(stats.wilcoxon(d, alternative=alternative, zero_method="zsplit").pvalue)
    ranks = stats.rankdata(np.abs(d))
    zero = np.isclose(d, 0)
    plus = ranks[(d > 0) & ~zero].sum() + ranks[zero].sum() / 2
    minus = ranks[(d < 0) & ~zero].sum() + ranks[zero].sum() / 2
    return p, float((plus - minus) / (plus + minus))


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


def permutation_p(observed: float, null: Sequence[float]) -> float:
    """One-sided empirical p-value, (1 + #null >= observed) / (1 + #null): never 0, 1/(N+1) at best."""
    null = np.asarray(null, dtype=np.float64)
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or len(null) == 0:
        return float("nan")
    return float((1 + np.sum(null >= observed - 1e-9)) / (1 + len(null)))
