"""Non-overlapping local windows over a channels-last token grid, for 2D and 3D.

A window that covers the whole grid is global attention, so one code path serves the
local (shallow, many tokens) and the global (deep, few tokens) stages.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch

__all__ = ["largest_divisor_at_most", "fit_window", "window_partition", "window_reverse"]


def largest_divisor_at_most(size: int, limit: int) -> int:
    """The largest divisor of ``size`` that is <= ``limit`` (at least 1)."""
    for d in range(min(size, max(limit, 1)), 0, -1):
        if size % d == 0:
            return d
    return 1


def fit_window(grid: Sequence[int], window: Sequence[int]) -> Tuple[int, ...]:
    """Shrink each window edge to the largest divisor of the grid edge, so windows tile exactly.

    nnU-Net patch sizes are multiples of the total pooling, so grid edges carry many
    factors of 2 and this rarely changes a power-of-two window; tiling exactly avoids
    padding and masking.
    """
    return tuple(largest_divisor_at_most(g, w) for g, w in zip(grid, window))


def window_partition(x: torch.Tensor, window: Sequence[int]) -> torch.Tensor:
    """``(B, *grid, C)`` -> ``(B * num_windows, prod(window), C)``; every window edge divides its grid edge."""
    b, *grid, c = x.shape
    dims = len(grid)
    split = [b]
    for g, w in zip(grid, window):
        split += [g // w, w]
    x = x.reshape(*split, c)
    # (B, n1, w1, n2, w2, ..., C) -> (B, n1, n2, ..., w1, w2, ..., C)
    order = [0] + [1 + 2 * i for i in range(dims)] + [2 + 2 * i for i in range(dims)] + [1 + 2 * dims]
    tokens = 1
    for w in window:
        tokens *= w
    return x.permute(*order).reshape(-1, tokens, c)


def window_reverse(windows: torch.Tensor, window: Sequence[int], grid: Sequence[int], batch: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B * num_windows, prod(window), C)`` -> ``(B, *grid, C)``."""
    dims = len(grid)
    c = windows.shape[-1]
    counts = [g // w for g, w in zip(grid, window)]
    x = windows.reshape(batch, *counts, *window, c)
    # (B, n1, n2, ..., w1, w2, ..., C) -> (B, n1, w1, n2, w2, ..., C)
    order = [0]
    for i in range(dims):
        order += [1 + i, 1 + dims + i]
    order.append(1 + 2 * dims)
    return x.permute(*order).reshape(batch, *grid, c)
