"""Window partition / reverse on 2D and 3D channels-last grids."""
import pytest
import torch

from nnunet_dyntransnet.network.windows import fit_window, largest_divisor_at_most, window_partition, window_reverse


@pytest.mark.parametrize("grid,window", [((8, 12), (4, 3)), ((4, 6, 8), (2, 3, 4)), ((5, 8, 8), (5, 8, 8))])
def test_roundtrip(grid, window):
    x = torch.randn(2, *grid, 3)
    w = window_partition(x, window)
    n_windows = 1
    for g, s in zip(grid, window):
        n_windows *= g // s
    assert w.shape == (2 * n_windows, torch.Size(window).numel(), 3)
    assert torch.equal(window_reverse(w, window, grid, 2), x)


def test_windows_hold_contiguous_blocks():
    grid = (4, 6)
    x = torch.arange(24.0).reshape(1, 4, 6, 1)
    w = window_partition(x, (2, 3))
    # second window (row block 0, column block 1): rows 0-1, columns 3-5
    expected = x[0, 0:2, 3:6, 0].reshape(-1)
    assert torch.equal(w[1, :, 0], expected)


@pytest.mark.parametrize("size,limit,expected", [(64, 8, 8), (20, 8, 5), (7, 8, 7), (11, 8, 1), (12, 8, 6), (4, 8, 4)])
def test_largest_divisor(size, limit, expected):
    assert largest_divisor_at_most(size, limit) == expected


def test_fit_window():
    assert fit_window((40, 112, 96), (8, 8, 8)) == (8, 8, 8)
    assert fit_window((20, 6), (8, 8)) == (5, 6)
