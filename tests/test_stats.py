"""Statistics over subjects and macro scores (issue 18, items 8-11): Wilcoxon p-values with ties,
all-zero differences, coverage of the mean's confidence interval, macro-F1 as scikit-learn defines it."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, f1_score

from gru_xnet.metrics import confusion_matrix, scores
from loso.stats import T_INTERVAL_BELOW, Interval, SignedRank, binomial_p, holm, items_to_reach, mean_ci, signed_rank

# 15 SEED-IV-like subjects (4 classes, 24 trials): balanced accuracy minus chance comes in steps of
# 100/24 %, so many differences tie and four are zero.
SEEDIV_STEPS = np.array([0, 2, -1, 1, 1, 1, 1, -1, 0, 4, 4, 0, 4, 0, -1]) * 100 / 24


def every_sign_flip_p(d: np.ndarray) -> float:
    """One-sided ('greater') p of R+ over all 2^n sign flips of the zsplit ranks: the exact permutation p."""
    ranks = stats.rankdata(np.abs(d))
    flips = np.array(list(itertools.product([-1.0, 1.0], repeat=len(d))))
    null = ((flips * d > 0) * ranks).sum(axis=1)
    return float(np.mean(null >= ranks[d > 0].sum()))


def test_wilcoxon_with_ties_follows_the_permutation_distribution():
    # Defect: with ties or zeros from 14 subjects on, scipy's "auto" used the normal approximation.
    reference = every_sign_flip_p(SEEDIV_STEPS)
    normal = stats.wilcoxon(SEEDIV_STEPS, alternative="greater", zero_method="zsplit").pvalue
    result = signed_rank(SEEDIV_STEPS)
    assert isinstance(result, SignedRank) and result.method == "permutation (9999 resamples)"
    assert abs(result.p - reference) < 0.002 < 0.005 < abs(normal - reference)
    assert result == signed_rank(SEEDIV_STEPS)  # seeded: the same table every time
    assert signed_rank(SEEDIV_STEPS, alternative="two-sided").p == pytest.approx(2 * reference, abs=0.002)


def test_wilcoxon_with_ties_enumerates_every_flip_for_few_subjects():
    d = np.array([2.5, 2.5, -2.5, 5.0, 0.0, 7.5, 7.5, 10.0])
    assert signed_rank(d).p == pytest.approx(every_sign_flip_p(d))


def test_wilcoxon_without_ties_is_exact_and_normal_beyond_50_subjects():
    d = np.array([0.5, 1.5, -2.5, 3.5, 4.5, -5.5, 6.5, 7.5, 8.5, -9.5, 10.5, 11.5, 12.5, 13.5, 14.5])
    for alternative in ("greater", "two-sided", "less"):
        result = signed_rank(d, alternative=alternative)
        assert result.method == "exact"
        assert result.p == stats.wilcoxon(d, alternative=alternative, method="exact").pvalue
    many = np.tile(SEEDIV_STEPS, 4)[:51]
    result = signed_rank(many)
    assert result.method == "normal approximation"
    assert result.p == pytest.approx(stats.wilcoxon(many, alternative="greater", zero_method="zsplit",
                                                    method="asymptotic").pvalue)


def test_rank_biserial_splits_zeros_between_the_signs():
    assert signed_rank([5, 6, 7, 8, 9]) == (1 / 32, 1.0, "exact")
    assert signed_rank([0, 1, -2]).r == pytest.approx((2.5 - 3.5) / 6)
    assert signed_rank(-SEEDIV_STEPS).r == pytest.approx(-signed_rank(SEEDIV_STEPS).r)


def test_all_differences_zero_is_no_difference_and_counts_for_holm():
    # Defect: every difference zero gave NaN ("--" in the tables) and Holm dropped the test.
    assert signed_rank([0.0] * 6) == (1.0, 0.0, "all differences zero")
    assert signed_rank([1e-12, -1e-13, 0.0, np.nan]) == (1.0, 0.0, "all differences zero")
    assert holm([0.01, signed_rank([0.0] * 6).p]).tolist() == [0.02, 1.0]
    for too_few in ([0.0], [3.0, np.nan], []):
        p, r, method = signed_rank(too_few)
        assert np.isnan(p) and np.isnan(r) and method == ""


@pytest.mark.parametrize("n", [5, 15])
@pytest.mark.parametrize("population", ["normal", "accuracy-like"])
def test_mean_ci_covers_the_mean_95_percent_of_the_time(n, population):
    # Defect: the percentile bootstrap covered the true mean 84-86 % of the time at n = 5, 92 % at n = 15.
    rng = np.random.default_rng(18)
    draw = {"normal": lambda: rng.normal(60.0, 10.0, n),
            "accuracy-like": lambda: 100 * rng.beta(6.0, 4.0, n)}[population]  # skewed, in [0, 100], mean 60
    intervals = [mean_ci(draw()) for _ in range(500)]
    assert {interval.method for interval in intervals} == {"t"}
    coverage = np.mean([interval.low <= 60.0 <= interval.high for interval in intervals])
    assert coverage >= 0.93


def test_mean_ci_edge_cases_and_bootstrap_from_30_values():
    values = [50, 60, 70, 80]
    half_width = stats.t.ppf(0.975, 3) * np.std(values, ddof=1) / 2
    assert mean_ci(values + [np.nan]) == pytest.approx((65 - half_width, 65 + half_width, "t"))
    assert mean_ci([3.0, 3.0, np.inf]) == (3.0, 3.0, "t")
    for too_few in ([1.0], [np.nan, 2.0], []):
        low, high, method = mean_ci(too_few)
        assert np.isnan(low) and np.isnan(high) and method == ""
    many = np.random.default_rng(0).normal(60, 10, T_INTERVAL_BELOW)
    interval = mean_ci(many)
    assert isinstance(interval, Interval) and interval.method == "percentile bootstrap"
    assert interval.low < many.mean() < interval.high and interval == mean_ci(many)


def sklearn_scores(y_true: list[int], y_pred: list[int]) -> tuple[float, float]:
    """scikit-learn's macro-F1 and balanced accuracy in percent (its warnings about absent classes muted)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (100 * f1_score(y_true, y_pred, average="macro", zero_division=0),
                100 * balanced_accuracy_score(y_true, y_pred))


@settings(database=None, derandomize=True, deadline=None, max_examples=300)
@given(st.integers(2, 5).flatmap(lambda k: st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)),
                                                    min_size=1, max_size=30).map(lambda pairs: (k, pairs))))
@example((3, [(0, 0), (0, 2), (1, 1), (1, 1)]))  # issue 18 item 11: 83.3 here, 55.6 in scikit-learn
def test_macro_f1_and_balanced_accuracy_match_scikit_learn(case):
    # Defect: macro-F1 averaged over the true classes only; scikit-learn averages over true or predicted.
    n_classes, pairs = case
    y_true, y_pred = (list(labels) for labels in zip(*pairs))
    ours = scores(confusion_matrix(y_true, y_pred, n_classes))
    if len(set(y_true)) < 2:
        assert np.isnan(ours["macro_f1"]) and np.isnan(ours["balanced_accuracy"])
        return
    macro_f1, balanced_accuracy = sklearn_scores(y_true, y_pred)
    assert ours["macro_f1"] == pytest.approx(macro_f1)
    assert ours["balanced_accuracy"] == pytest.approx(balanced_accuracy)


def test_macro_f1_counts_a_predicted_class_the_subject_never_shows():
    assert scores(confusion_matrix([0, 0, 1, 1], [0, 2, 1, 1], 3))["macro_f1"] == pytest.approx(500 / 9)
    assert scores(confusion_matrix([0, 0, 1, 1], [0, 0, 1, 1], 4))["macro_f1"] == 100.0


def test_a_t_interval_is_clipped_to_the_scores_range():
    # The demo's 5 subjects at 100, 92.5, 100, 100, 92.5 % gave [91.9, 102.1] unclipped.
    interval = mean_ci([100, 92.5, 100, 100, 92.5], bounds=(0.0, 100.0))
    assert interval.high == 100.0 and 90 < interval.low < 93 and interval.method == "t"


def test_a_subjects_binomial_against_chance_and_the_trials_an_all_correct_subject_needs():
    assert binomial_p(18, 18, 1 / 3) == pytest.approx((1 / 3) ** 18)
    assert binomial_p(9, 18, 1 / 3) == pytest.approx(stats.binomtest(9, 18, 1 / 3, alternative="greater").pvalue)
    assert binomial_p(0, 18, 1 / 3) == pytest.approx(1.0)
    assert np.isnan(binomial_p(6, 6, 1.0)) and np.isnan(binomial_p(0, 0, 0.5))  # one class, or no trial: no test
    assert items_to_reach(0.05 / 8, 1 / 3) == 5 and (1 / 3) ** 5 <= 0.05 / 8 < (1 / 3) ** 4
    assert items_to_reach(0.05, 0.5) == 5 and items_to_reach(0.05, 1.0) is None
