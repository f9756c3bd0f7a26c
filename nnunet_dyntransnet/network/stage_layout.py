"""How DynTransNet lays out its stages for a given patch size: grids, widths, heads, windows.

Everything here is derived from nnU-Net's plan (patch size, strides, features per stage),
so the network configures itself like nnU-Net's own U-Nets. Invalid combinations raise a
``ValueError`` that names the values and says what would work.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import List, Sequence, Tuple, Union

from nnunet_dyntransnet.network.windows import fit_window

__all__ = ["total_stride", "StageLayout", "plan_stage_layout", "expand_per_stage", "format_layout", "voxels_per_stage"]

IntOrSeq = Union[int, Sequence[int]]


@dataclass(frozen=True)
class StageLayout:
    """One encoder stage as built for the planned patch size.

    Attributes:
        index: stage number; 0 is the full-resolution convolutional stem.
        kind: ``"conv"`` (the stem and the ``conv_stages - 1`` stages after it: the plan's conv units, as nnU-Net's
            U-Net), ``"local"`` (windowed attention) or ``"global"`` attention.
        grid: feature-map size at this stage for the planned patch.
        channels: feature channels.
        depth: transformer blocks (for the stem: conv units).
        heads: attention heads (0 for the stem).
        window: attention window per axis (the whole grid when global; empty for the stem).
        stride: downsampling into this stage (all 1 for the stem).
        kernel: conv kernel of this stage's stem or decoder RM.
    """

    index: int
    kind: str
    grid: Tuple[int, ...]
    channels: int
    depth: int
    heads: int
    window: Tuple[int, ...]
    stride: Tuple[int, ...]
    kernel: Tuple[int, ...]

    @property
    def tokens(self) -> int:
        return prod(self.grid)

    @property
    def tokens_per_attention(self) -> int:
        """How many keys each query attends to (0 for the stem)."""
        return prod(self.window) if self.window else 0


def expand_per_stage(value, n_stages: int, name: str) -> list:
    """An int (or one kernel/stride) for every stage, or a list with one entry per stage."""
    if isinstance(value, int):
        return [value] * n_stages
    value = list(value)
    if len(value) != n_stages:
        raise ValueError(f"{name} has {len(value)} entries but the network has {n_stages} stages: {value}")
    return value


def _as_axes(value: IntOrSeq, dims: int, name: str) -> Tuple[int, ...]:
    axes = (value,) * dims if isinstance(value, int) else tuple(int(v) for v in value)
    if len(axes) != dims:
        raise ValueError(f"{name}={list(axes)} has {len(axes)} axes but the patch is {dims}D")
    return axes


def heads_for(channels: int, head_dim: int) -> int:
    """``channels // head_dim`` heads (at least 1), lowered until it divides ``channels``."""
    heads = max(1, channels // head_dim)
    while channels % heads:
        heads -= 1
    return heads


def total_stride(strides: Sequence[IntOrSeq], dims: int) -> Tuple[int, ...]:
    """Per axis, the product of the per-stage strides (an int is every axis'): what a patch must be divisible by."""
    out = [1] * dims
    for s in strides:
        s = [s] * dims if isinstance(s, int) else s
        out = [o * int(v) for o, v in zip(out, s)]
    return tuple(out)


def _checked_configuration(patch_size, features_per_stage, strides, kernel_sizes, depths, head_dim, window_size,
                           max_global_tokens, conv_stages):
    """:func:`plan_stage_layout`'s arguments checked, each refusal naming the value and what to give; returns the
    per-stage strides, kernels and depths and the window, each expanded to every stage and axis."""
    dims = len(patch_size)
    if dims not in (2, 3):
        raise ValueError(f"patch_size must have 2 or 3 axes, got {list(patch_size)}")
    n_stages = len(features_per_stage)
    if n_stages < 2:
        raise ValueError(
            f"DynTransNet needs at least 2 stages (a stem and one transformer stage), got "
            f"features_per_stage={list(features_per_stage)}"
        )
    if any(int(f) < 1 for f in features_per_stage):
        raise ValueError(f"features_per_stage must be positive, got {list(features_per_stage)}")
    if not 1 <= conv_stages <= n_stages - 1:
        raise ValueError(f"conv_stages={conv_stages}: give 1 (the stem alone) to {n_stages - 1} (all but the "
                         f"lowest-resolution stage) for these {n_stages} stages; D-MSA needs one transformer stage")
    if head_dim < 1 or max_global_tokens < 1:
        raise ValueError(f"head_dim ({head_dim}) and max_global_tokens ({max_global_tokens}) must be >= 1")
    strides = [_as_axes(s, dims, f"strides[{i}]") for i, s in enumerate(expand_per_stage(strides, n_stages, "strides"))]
    kernels = [_as_axes(k, dims, f"kernel_sizes[{i}]") for i, k in enumerate(expand_per_stage(kernel_sizes, n_stages, "kernel_sizes"))]
    depths = expand_per_stage(depths, n_stages, "depths")
    window = _as_axes(window_size, dims, "window_size")
    if any(w < 1 for w in window):
        raise ValueError(f"window_size must be >= 1 on every axis, got {list(window)}")
    if any(s != 1 for s in strides[0]):
        raise ValueError(
            f"strides[0] must be all 1 (the stem works at full resolution, as in every nnU-Net plan), "
            f"got {list(strides[0])}"
        )
    for i, (s, k) in enumerate(zip(strides, kernels)):
        if any(v < 1 for v in s):
            raise ValueError(f"strides[{i}]={list(s)} must be >= 1 on every axis")
        if any(v < 1 or v % 2 == 0 for v in k):
            raise ValueError(f"kernel_sizes[{i}]={list(k)} must be odd and >= 1 on every axis")
    if any(int(d) < 1 for d in depths):
        raise ValueError(f"depths must be >= 1 per stage, got {list(depths)}")
    total = list(total_stride(strides, dims))
    if any(p % t for p, t in zip(patch_size, total)):
        raise ValueError(
            f"patch_size {list(patch_size)} must be divisible by the total stride {total} on every axis; "
            f"use a patch size that is a multiple of {total} (nnU-Net's planners produce one)"
        )
    return strides, kernels, depths, window


def plan_stage_layout(
    patch_size: Sequence[int],
    features_per_stage: Sequence[int],
    strides: Sequence[IntOrSeq],
    kernel_sizes: Sequence[IntOrSeq],
    depths: Sequence[int],
    head_dim: int = 32,
    window_size: IntOrSeq = 8,
    max_global_tokens: int = 4096,
    conv_stages: int = 1,
) -> List[StageLayout]:
    """Validate a configuration and lay out its stages.

    Args:
        patch_size: planned input size, 2 or 3 axes.
        features_per_stage: channels per stage (stage 0 is the stem); at least 2 stages.
        strides: per-stage downsampling (nnU-Net's ``pool_op_kernel_sizes``); stage 0 must be 1.
        kernel_sizes: per-stage conv kernel (odd), used by the stem and the decoder's RM.
        depths: per-stage block count.
        head_dim: target channels per attention head.
        window_size: largest local-window edge (per axis or one int).
        max_global_tokens: stages with at most this many tokens use global attention.
        conv_stages: how many stages, from the highest resolution, are convolutional (the stem is one); at
            least one stage stays a transformer stage.

    Returns:
        One :class:`StageLayout` per stage.
    """
    strides, kernels, depths, window = _checked_configuration(patch_size, features_per_stage, strides, kernel_sizes,
                                                              depths, head_dim, window_size, max_global_tokens,
                                                              conv_stages)
    n_stages = len(features_per_stage)
    layout = []
    grid = tuple(int(p) for p in patch_size)
    for i in range(n_stages):
        grid = tuple(g // s for g, s in zip(grid, strides[i]))
        channels = int(features_per_stage[i])
        if i < conv_stages:
            layout.append(StageLayout(i, "conv", grid, channels, int(depths[i]), 0, (), strides[i], kernels[i]))
            continue
        is_global = prod(grid) <= max_global_tokens
        stage_window = grid if is_global else fit_window(grid, window)
        layout.append(
            StageLayout(
                i, "global" if is_global else "local", grid, channels, int(depths[i]),
                heads_for(channels, head_dim), stage_window, strides[i], kernels[i],
            )
        )
    return layout


def format_layout(layout: Sequence[StageLayout]) -> str:
    """A plain-text table of a layout, for logs and the README."""
    rows = ["stage  kind    grid              channels  depth  heads  window        tokens  tokens/attn"]
    for s in layout:
        grid = "x".join(map(str, s.grid))
        window = "x".join(map(str, s.window)) if s.window else "-"
        rows.append(
            f"{s.index:<6} {s.kind:<7} {grid:<17} {s.channels:<9} {s.depth:<6} {s.heads:<6} {window:<13} "
            f"{s.tokens:<7} {s.tokens_per_attention}"
        )
    return "\n".join(rows)


def voxels_per_stage(layout: Sequence[StageLayout], input_size: Sequence[int]) -> List[int]:
    """Voxels (tokens) of each stage's grid for an input of ``input_size`` (not necessarily the planned patch)."""
    voxels, grid = [], list(input_size)
    for s in layout:
        grid = [g // st for g, st in zip(grid, s.stride)]
        voxels.append(prod(grid))
    return voxels
