"""A 1x1 convolution computed as a batched matrix product over the voxels.

FM-M's four convolutions and the decoder's segmentation heads are 1x1 (1x1x1 in 3D): per voxel, a matrix of
weights times the channel vector. oneDNN, which runs torch's CPU convolutions, handles that kernel slowly:
forward and backward on a batch of 2 x 32x64x64 took 42 ms as a convolution and 4.9 ms as this product at
8 -> 12 channels, 156 ms against 62 ms at 32 -> 48; at 64 -> 96 channels on 16x32x32 the two were even
(``measurements/pointwise.py``, ``measurements/results/cpu_2026-11-30/pointwise.json``). The modules stay
``nn.Conv2d``/``nn.Conv3d`` (the same parameters and checkpoints); only their forward goes through
:func:`pointwise_conv`.
"""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["pointwise_conv"]


def pointwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``conv(x, weight, bias)`` for a 1x1 kernel: ``(B, C, *spatial)``, weight ``(O, C, 1, ...)``, bias ``(O,)`` or
    None -> ``(B, O, *spatial)``, channels-first like the input."""
    b, c = x.shape[:2]
    o = weight.shape[0]
    flat = x.reshape(b, c, -1)  # (B, C, voxels): a view of a channels-first tensor
    # bmm, not matmul: matmul folds the batch into rows of a transposed copy, which autograd would keep
    w = weight.reshape(o, c).expand(b, o, c)
    out = torch.bmm(w, flat) if bias is None else torch.baddbmm(bias.view(1, o, 1), w, flat)
    return out.view(b, o, *x.shape[2:])
