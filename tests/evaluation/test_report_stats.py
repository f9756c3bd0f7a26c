"""The report's statistics against hand-worked examples (the module calls scipy; comparing it with the same scipy calls
would test nothing)."""
import math

import pytest

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


def test_paired_t_by_hand():
    # differences 1, 2, 3: mean 2, SD 1, t = 2 / (1 / sqrt 3) = 3.4641 with 2 dof -> p = 0.0742
    p = paired_t_test([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert p == pytest.approx(0.07417990022744858, rel=1e-9)


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


def test_wilcoxon_with_ties_by_hand():
    # differences +1 +1 +2 -3: ranks 1.5 1.5 3 4, W+ = 6 (mean 5). A small sample: the exact distribution over the
    # 16 sign patterns, tied ranks kept. W+ over them: 0 1.5 1.5 3 3 4 4.5 4.5 5.5 5.5 6 7 7 8.5 8.5 10; as far from
    # 5 as 6 or farther: all but the four at 4.5 and 5.5 -> two-sided p = 12/16
    assert wilcoxon_signed_rank([2, 3, 4, 0], [1, 2, 2, 3]) == pytest.approx(12 / 16)
