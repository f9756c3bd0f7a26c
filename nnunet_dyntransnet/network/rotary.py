"""Axial rotary position embedding (RoPE) for windowed attention, in 2D and 3D.

The position signal of the transformer stages. Rotating queries and keys by angles that
grow with position makes ``q . k`` depend on the *offset* between two tokens, so it works for
any patch size and window, and costs only elementwise work (a depthwise-conv positional
encoding made the training step several times slower on an H200: cuDNN's 3D depthwise weight
gradient; docs/network.md). Because only offsets matter, coordinates are taken inside the
window, and one small table serves every window.

Head channels are rotated in pairs; pairs are dealt out to the axes in turn, so with
``head_dim = 32`` in 3D the axes get 6, 5 and 5 pairs. Each axis uses the RoPE
frequencies ``base ** (-j / n_pairs_axis)``.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
from torch import nn

__all__ = ["AxialRotaryEmbedding", "apply_rotary", "apply_rotary_real"]


class AxialRotaryEmbedding(nn.Module):
    """Angles for the tokens of one window.

    Args:
        head_dim: channels per head; ``head_dim // 2`` pairs are rotated (an odd channel stays).
        dims: spatial axes (2 or 3).
        base: frequency base; windows and grids here span at most tens of tokens per axis, so a
            base of 100 (not the 10000 of language models) keeps the slow pairs turning.

    Shapes: ``forward(window)`` returns ``cos, sin`` of shape ``(prod(window), head_dim // 2)``,
    tokens in :func:`nnunet_dyntransnet.network.windows.window_partition` order.
    """

    def __init__(self, head_dim: int, dims: int, base: float = 100.0) -> None:
        super().__init__()
        pairs = head_dim // 2
        axis_of_pair = torch.arange(pairs) % dims
        # pair p turns about axis p % dims, as the (p // dims)-th of that axis's pairs: frequencies
        # base ** (-k / n) for k = 0 .. n-1 per axis (written without data-dependent indexing, so that
        # the network also builds on the meta device)
        rank = torch.tensor([p // dims for p in range(pairs)], dtype=torch.float32)
        members = torch.tensor([len(range(p % dims, pairs, dims)) for p in range(pairs)], dtype=torch.float32)
        freqs = base ** (-rank / members)
        self.register_buffer("axis_of_pair", axis_of_pair, persistent=False)
        self.register_buffer("freqs", freqs, persistent=False)
        self.dims = dims

    def forward(self, window: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        axes = [torch.arange(w, device=self.freqs.device, dtype=torch.float32) for w in window]
        coords = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, self.dims)  # (N, dims)
        angles = coords[:, self.axis_of_pair] * self.freqs  # (N, pairs)
        return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs ``(2i, 2i + 1)`` of ``x`` ``(..., N, d)`` by the angles of ``cos, sin`` ``(N, P)``.

    A pair is a complex number and the rotation one complex product, read straight from ``x`` (a view, also of the
    strided q and k the attention cuts from its qkv projection): forward and backward of q and k at a 3D
    stage-1 size took about a third of the time of the same rotation in real arithmetic, whose strided
    multiplications over half-pairs are slow on CPU. The real form (:func:`apply_rotary_real`) serves torch.compile,
    whose code generation fuses real elementwise operations into one kernel but not complex ones, and the ONNX
    exporter, which has no complex type.
    """
    if torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export():
        return apply_rotary_real(x, cos, sin)
    rotated = 2 * cos.shape[-1]
    pairs = x[..., :rotated].float().unflatten(-1, (-1, 2))
    if any(stride % 2 for stride in pairs.stride()[:-1]):
        # a complex view needs whole pairs: an odd head dim cut from qkv has none (its offsets are multiples of the
        # strides; the offset itself is not asked, which torch.compile cannot trace)
        pairs = pairs.contiguous()
    out = torch.view_as_real(torch.view_as_complex(pairs) * torch.complex(cos, sin)).flatten(-2).to(x.dtype)
    return torch.cat((out, x[..., rotated:]), dim=-1) if rotated < x.shape[-1] else out


def apply_rotary_real(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """:func:`apply_rotary` in real arithmetic: ``(a, b) -> (a cos - b sin, a sin + b cos)`` per pair."""
    rotated = 2 * cos.shape[-1]
    pairs = x[..., :rotated].unflatten(-1, (-1, 2)).float()
    a, b = pairs[..., 0], pairs[..., 1]
    out = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2).to(x.dtype)
    return torch.cat((out, x[..., rotated:]), dim=-1) if rotated < x.shape[-1] else out
