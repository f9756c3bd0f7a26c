"""Summary statistics and paired tests for per-case metrics, by ``scipy.stats``.

What this module adds to scipy is only the report's conventions for small or degenerate
samples (``None`` where a statistic is undefined, rather than NaN or a warning):

* ``describe``: mean, sample SD (n-1), and the 95% confidence interval of the mean from
  Student's t with n-1 degrees of freedom (``scipy.stats.t.interval``).
* ``paired_t_test``: two-sided ``scipy.stats.ttest_rel``; None for fewer than 2 pairs or no
  difference at all, 0 for a constant non-zero difference (scipy gives NaN there).
* ``wilcoxon_signed_rank``: two-sided ``scipy.stats.wilcoxon`` on the non-zero differences
  (Wilcoxon's convention: zero differences are dropped); scipy chooses the exact null
  distribution over sign patterns for small samples (tied ranks kept), the normal approximation
  (no continuity correction) for large ones. None if no non-zero difference remains.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import stats

__all__ = ["Summary", "describe", "paired_t_test", "wilcoxon_signed_rank"]


@dataclass(frozen=True)
class Summary:
    n: int
    mean: Optional[float]
    sd: Optional[float]
    ci_low: Optional[float]
    ci_high: Optional[float]


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
    if sd == 0:  # scipy's interval is NaN for a zero scale; the interval is the point itself
        return Summary(n, mean, 0.0, mean, mean)
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sd / np.sqrt(n))
    return Summary(n, mean, sd, float(low), float(high))


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
    """Two-sided p-value of the paired t-test of ``a - b``; None for fewer than 2 pairs or all-equal differences."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size < 2:
        return None
    if d.std(ddof=1) == 0:
        return None if d.mean() == 0 else 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def wilcoxon_signed_rank(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
    """Two-sided p-value of the Wilcoxon signed-rank test of ``a - b``; None if no non-zero difference remains."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    d = d[d != 0]
    if d.size == 0:
        return None
    return float(stats.wilcoxon(d, correction=False).pvalue)
