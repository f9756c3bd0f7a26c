"""Summary statistics and paired tests for per-case metrics.

Written out here (rather than calling ``scipy.stats`` tests) so that the report states exactly
what it computes; ``tests/test_report_stats.py`` checks every function against scipy and
against hand-worked examples. Only the t and normal distribution functions come from
``scipy.special``.

* ``describe``: mean, sample SD (n-1), and the 95% confidence interval of the mean from
  Student's t with n-1 degrees of freedom.
* ``paired_t_test``: two-sided paired t-test on the differences.
* ``wilcoxon_signed_rank``: two-sided Wilcoxon signed-rank test; zero differences are
  dropped (Wilcoxon's convention); exact null distribution when at most 50 differences remain
  and none tie, exact enumeration of sign flips when ties occur among at most 13 differences,
  else the normal approximation with the tie correction and no continuity correction.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import special

__all__ = ["Summary", "describe", "paired_t_test", "wilcoxon_signed_rank", "t_quantile"]


@dataclass(frozen=True)
class Summary:
    n: int
    mean: Optional[float]
    sd: Optional[float]
    ci_low: Optional[float]
    ci_high: Optional[float]


def t_quantile(p: float, dof: int) -> float:
    """Quantile of Student's t (bisection on scipy.special.stdtr, which is monotone)."""
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        if special.stdtr(dof, mid) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def describe(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """n, mean, SD (n-1) and the t confidence interval of the mean; None where n is too small."""
    x = np.asarray(values, dtype=float)
    n = x.size
    if n == 0:
        return Summary(0, None, None, None, None)
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, None, None, None)
    sd = float(x.std(ddof=1))
    half = t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
    """Two-sided p-value of the paired t-test of ``a - b``; None for fewer than 2 pairs or all-equal differences."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = d.size
    if n < 2:
        return None
    sd = d.std(ddof=1)
    if sd == 0:
        return None if d.mean() == 0 else 0.0
    t = d.mean() / (sd / math.sqrt(n))
    return float(2 * special.stdtr(n - 1, -abs(t)))


def _midranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size)
    sorted_x = x[order]
    i = 0
    while i < x.size:
        j = i
        while j + 1 < x.size and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1  # ranks start at 1; ties share their mean rank
        i = j + 1
    return ranks


def _exact_signed_rank_counts(n: int) -> np.ndarray:
    """counts[s] = number of sign patterns of ranks 1..n whose positive ranks sum to s."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1
    for r in range(1, n + 1):
        counts[r:] = counts[r:] + counts[:-r].copy()
    return counts


def wilcoxon_signed_rank(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
    """Two-sided p-value of the Wilcoxon signed-rank test of ``a - b``; None if no non-zero difference remains."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    d = d[d != 0]
    n = d.size
    if n == 0:
        return None
    ranks = _midranks(np.abs(d))
    w_plus = float(ranks[d > 0].sum())
    ties = ranks.size != np.unique(ranks).size
    if not ties and n <= 50:
        counts = _exact_signed_rank_counts(n)
        total = counts.sum()
        s = int(round(w_plus))
        p_low, p_high = counts[: s + 1].sum() / total, counts[s:].sum() / total
        return float(min(1.0, 2 * min(p_low, p_high)))
    if ties and n <= 13:
        sums = np.array([ranks[np.array(signs, bool)].sum() for signs in itertools.product((0, 1), repeat=n)])
        p_low, p_high = np.mean(sums <= w_plus + 1e-9), np.mean(sums >= w_plus - 1e-9)
        return float(min(1.0, 2 * min(p_low, p_high)))
    mean = n * (n + 1) / 4
    _, tie_sizes = np.unique(ranks, return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24 - float((tie_sizes ** 3 - tie_sizes).sum()) / 48
    z = (w_plus - mean) / math.sqrt(var)
    return float(2 * special.ndtr(-abs(z)))
