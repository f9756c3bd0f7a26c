"""The report's statistics against scipy.stats and against hand-worked examples."""
import math

import numpy as np
import pytest
import scipy.stats as st

from nnunet_dyntransnet.evaluation.stats import describe, paired_t_test, wilcoxon_signed_rank


def test_describe_by_hand():
    s = describe([1.0, 2.0, 3.0, 4.0, 10.0])
    assert s.n == 5 and s.mean == 4.0
    assert s.sd == pytest.approx(math.sqrt(12.5))  # squared deviations 9+4+1+0+36 = 50, / (5-1)
    half = 2.7764451051977987 * math.sqrt(12.5) / math.sqrt(5)  # t(0.975, 4) from tables
    assert (s.ci_low, s.ci_high) == pytest.approx((4 - half, 4 + half))


def test_describe_small_samples():
    assert describe([]).mean is None
    one = describe([0.5])
    assert one.mean == 0.5 and one.sd is None and one.ci_low is None


@pytest.mark.parametrize("n", [2, 3, 7, 20, 131])
def test_confidence_interval_matches_scipy(n):
    x = np.random.default_rng(n).normal(0.9, 0.05, n)
    s = describe(x)
    low, high = st.t.interval(0.95, n - 1, loc=x.mean(), scale=st.sem(x))
    assert (s.ci_low, s.ci_high) == pytest.approx((low, high), rel=1e-9)


def test_paired_t_by_hand():
    # differences 1, 2, 3: mean 2, SD 1, t = 2 / (1 / sqrt 3) = 3.4641 with 2 dof -> p = 0.0742
    p = paired_t_test([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert p == pytest.approx(0.07417990022744858, rel=1e-9)


@pytest.mark.parametrize("n", [2, 5, 13, 40, 131])
def test_paired_t_matches_scipy(n):
    rng = np.random.default_rng(100 + n)
    a = rng.normal(0.85, 0.05, n)
    b = a + rng.normal(0.01, 0.02, n)
    assert paired_t_test(a, b) == pytest.approx(st.ttest_rel(a, b).pvalue, rel=1e-9)


def test_paired_t_degenerate():
    assert paired_t_test([0.5], [0.4]) is None
    assert paired_t_test([0.5, 0.6], [0.5, 0.6]) is None  # no difference at all
    assert paired_t_test([0.6, 0.7], [0.5, 0.6]) == 0.0  # a constant non-zero shift


def test_wilcoxon_by_hand():
    # differences +1 +2 +3 +4 +5: W+ = 15, the largest of 2^5 sign patterns -> two-sided p = 2/32
    assert wilcoxon_signed_rank([1, 2, 3, 4, 5], [0, 0, 0, 0, 0]) == pytest.approx(2 / 32)
    # zero differences are dropped
    assert wilcoxon_signed_rank([1, 2, 3, 4, 5, 7], [0, 0, 0, 0, 0, 7]) == pytest.approx(2 / 32)
    assert wilcoxon_signed_rank([1, 2], [1, 2]) is None


@pytest.mark.parametrize("n", [3, 8, 20, 50, 51, 131])
def test_wilcoxon_matches_scipy_without_ties(n):
    rng = np.random.default_rng(n)
    a = rng.normal(0.85, 0.05, n)
    b = a + rng.normal(0.005, 0.02, n)
    assert wilcoxon_signed_rank(a, b) == pytest.approx(st.wilcoxon(a, b).pvalue, rel=1e-9)


def test_wilcoxon_matches_scipy_with_ties():
    a = np.array([0.9, 0.8, 0.85, 0.7, 0.95, 0.6, 0.75, 0.88])
    b = a - np.array([0.01, 0.01, 0.02, -0.02, 0.03, 0.03, -0.005, 0.04])  # |d| ties: 0.01 twice, 0.02, 0.03 twice
    assert wilcoxon_signed_rank(a, b) == pytest.approx(st.wilcoxon(a, b).pvalue, rel=1e-9)
    rng = np.random.default_rng(1)
    a = np.round(rng.normal(0.8, 0.05, 60), 2)  # rounded: many ties, normal approximation
    b = np.round(a + rng.normal(0.01, 0.02, 60), 2)
    keep = a != b
    assert wilcoxon_signed_rank(a, b) == pytest.approx(
        st.wilcoxon(a[keep], b[keep], method="asymptotic", correction=False).pvalue, rel=1e-9)
