"""Encoder transformer parts: strided patch projection, D-MSA blocks with rotary positions, stages.

Tokens stay on their spatial grid, channels last: ``(B, *grid, C)``. Attention runs inside
windows of that grid (a window equal to the grid is global attention).
"""
from __future__ import annotations

from typing import Sequence, Type

import torch
from timm.layers import DropPath, Mlp
from torch.utils.checkpoint import checkpoint
from torch import nn
from torch.nn.modules.conv import _ConvNd

from nnunet_dyntransnet.network.attention import ATTENTIONS
from nnunet_dyntransnet.network.checkpointing import kept_matmul, selective_checkpoint
from nnunet_dyntransnet.network.rotary import AxialRotaryEmbedding
from nnunet_dyntransnet.network.windows import fit_window, window_partition, window_reverse

__all__ = ["PATCH_EMBEDDINGS", "StridedPatchProjection", "DynamicTransformerBlock", "TransformerStage"]


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, *grid)`` -> ``(B, *grid, C)``."""
    return x.movedim(1, -1)


def channels_first(x: torch.Tensor) -> torch.Tensor:
    """``(B, *grid, C)`` -> ``(B, C, *grid)``."""
    return x.movedim(-1, 1)


# how a transformer stage embeds its input in tokens (``patch_embedding``): the paper's non-overlapping patches, or
# windows of ``2 * stride - 1`` voxels that overlap their neighbours' (StridedPatchProjection)
PATCH_EMBEDDINGS = ("linear", "overlapping")


class StridedPatchProjection(nn.Module):
    """Patch partition + linear embedding (and, between stages, patch merging).

    ``"linear"``: a convolution with kernel = stride is exactly "cut into non-overlapping patches,
    flatten, project" (paper eq. ``E = X' W_e + b_e``). ``"overlapping"``: kernel ``2 * stride - 1``,
    padding ``stride - 1`` per axis (kernel 3, padding 1 at stride 2, as nnU-Net's strided convolutions
    and SegFormer's overlapping patch embedding; 1 along an axis of stride 1), so each token also sees
    the ``stride - 1`` voxels before its patch, which the previous token's patch holds: the tokens'
    windows overlap and no edge between patches is invisible to both. Either is followed by LayerNorm.

    Shapes: ``(B, C_in, *spatial)`` -> ``(B, C_out, *spatial / stride)`` (channels first; ``spatial``
    divisible by ``stride``, as the network requires).
    """

    def __init__(self, conv_op: Type[_ConvNd], in_channels: int, out_channels: int, stride: Sequence[int],
                 embedding: str = "linear") -> None:
        super().__init__()
        if embedding not in PATCH_EMBEDDINGS:
            raise ValueError(f"patch_embedding={embedding!r} is not one of {PATCH_EMBEDDINGS}")
        stride = tuple(int(s) for s in stride)
        if embedding == "linear":
            kernel, padding = stride, (0,) * len(stride)
        else:
            kernel, padding = tuple(2 * s - 1 for s in stride), tuple(s - 1 for s in stride)
        self.proj = conv_op(in_channels, out_channels, kernel_size=kernel, stride=stride, padding=padding)
        self.norm = nn.LayerNorm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channels_first(self.norm(channels_last(self.proj(x))))

    def saved_elements(self, tokens: int) -> float:
        """The projection's output, kept by the norm (its input is the previous stage's output, counted there)."""
        return float(self.norm.normalized_shape[0] * tokens)


class DynamicTransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + DropPath(D-MSA(LN(x)))``, then ``x + DropPath(MLP(LN(x)))``.

    Attention runs within windows of ``window`` tokens per axis, fitted to the grid at each
    call (:func:`fit_window`), with rotary positions inside the window.

    Shapes: ``(B, *grid, C)`` -> same.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: Sequence[int],
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        attention: str = "dmsa",
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        self.window = tuple(window)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ATTENTIONS[attention](dim, num_heads, fused_attn=fused_attn)
        self.rotary = AxialRotaryEmbedding(dim // num_heads, len(self.window))
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, *grid = x.shape[:-1]
        window = fit_window(grid, self.window)
        tokens = window_partition(self.norm1(x), window)
        attended = window_reverse(self.attn(tokens, self.rotary(window)), window, grid, b)
        x = x + self.drop_path1(attended)
        return x + self.drop_path2(self.mlp(self.norm2(x)))

    def saved_elements(self, tokens: int) -> float:
        """Elements kept for backward per sample for ``tokens`` tokens: the two norms' inputs (and their mean and
        inverse deviation per token), the attention's own (its ``saved_elements``), and the MLP's input and
        hidden layer before and after the activation (18 per token and channel at head dim 32, MLP ratio 4)."""
        dim, hidden = self.mlp.fc1.in_features, self.mlp.fc1.out_features
        return (3 * dim + 2 * hidden + 4) * tokens + self.attn.saved_elements(tokens)

    def selectively_saved_elements(self, tokens: int) -> float:
        """What the block keeps under selective checkpointing (:func:`~nnunet_dyntransnet.network.checkpointing.block_policy`):
        its input, the MLP's hidden layer before the activation (:func:`~nnunet_dyntransnet.network.checkpointing.kept_matmul`),
        the attention kernel's outputs."""
        dim, hidden = self.mlp.fc1.in_features, self.mlp.fc1.out_features
        return (dim + (hidden if kept_matmul(dim, hidden) else 0)) * tokens + self.attn.attention_output_elements(tokens)


class TransformerStage(nn.Module):
    """One encoder stage: strided projection, ``depth`` D-MSA blocks, LayerNorm.

    Shapes: ``(B, C_in, *spatial)`` -> ``(B, C_out, *spatial / stride)``.
    """

    def __init__(
        self,
        conv_op: Type[_ConvNd],
        in_channels: int,
        out_channels: int,
        stride: Sequence[int],
        depth: int,
        num_heads: int,
        window: Sequence[int],
        mlp_ratio: float,
        drop_path: Sequence[float],
        attention: str,
        fused_attn: bool,
        patch_embedding: str = "linear",
    ) -> None:
        super().__init__()
        self.downsample = StridedPatchProjection(conv_op, in_channels, out_channels, stride, patch_embedding)
        self.blocks = nn.ModuleList(
            DynamicTransformerBlock(out_channels, num_heads, window, mlp_ratio, drop_path[i], attention, fused_attn)
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(out_channels)
        # recompute each block in backward instead of keeping its activations (DynTransNet's
        # activation_checkpointing sets it on the highest-resolution stage); or only its cheap operations
        # (selective_checkpointing, every stage); the first wins where both are set
        self.checkpoint_blocks = False
        self.selective_blocks = False

    def saved_elements(self, tokens: int) -> float:
        """Elements kept for backward per sample at ``tokens`` tokens: the projection's, each block's (only its
        input when checkpointed), and the stage norm's input and output (the skip)."""
        channels = self.norm.normalized_shape[0]
        if self.checkpoint_blocks:
            blocks = channels * tokens * len(self.blocks)
        elif self.selective_blocks:
            blocks = sum(block.selectively_saved_elements(tokens) for block in self.blocks)
        else:
            blocks = sum(block.saved_elements(tokens) for block in self.blocks)
        return self.downsample.saved_elements(tokens) + blocks + 2.0 * channels * tokens

    def recomputed_elements(self, tokens: int) -> float:
        """With either checkpointing, what backward holds again at once: at most one block's activations (else 0)."""
        recomputes = self.checkpoint_blocks or self.selective_blocks
        return max(block.saved_elements(tokens) for block in self.blocks) if recomputes else 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = channels_last(self.downsample(x))
        for block in self.blocks:
            if self.checkpoint_blocks and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            elif self.selective_blocks and torch.is_grad_enabled():
                x = selective_checkpoint(block, x)
            else:
                x = block(x)
        # contiguous: a channels-last view here would carry that memory format into the next stage's projection and
        # the whole decoder (convolutions follow their input's format), where InstanceNorm and the convolutions'
        # backward copy it back to channels-first, at full resolution too
        return channels_first(self.norm(x)).contiguous()
