"""DynTransNet encoder: a full-resolution convolutional stem, then hierarchical D-MSA transformer stages."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Type

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from nnunet_dyntransnet.network.checkpointing import conv_policy, selective_checkpoint
from nnunet_dyntransnet.network.conv_unit import ConvNormAct, ConvUnitSpec
from nnunet_dyntransnet.network.stage_layout import StageLayout
from nnunet_dyntransnet.network.transformer import TransformerStage

__all__ = ["DynTransEncoder"]


class DynTransEncoder(nn.Module):
    """Stem + transformer stages, returning one skip per stage.

    The stem (``depth`` conv units at full resolution, the same convolutions as stage 0 of
    nnU-Net's U-Net, so the costliest resolution costs no more) gives the decoder a
    full-resolution skip, which a transformer that starts from patches would lose. Stage 1
    embeds the *input* in patches (paper Algorithm 1); later stages merge the previous
    stage's tokens. Stochastic depth grows linearly over all transformer blocks.

    Shapes: ``forward(x)``: ``(B, C_in, *patch)`` -> list of ``(B, C_i, *grid_i)``, stage 0 first.
    """

    def __init__(
        self,
        conv_op: Type[_ConvNd],
        input_channels: int,
        layout: Sequence[StageLayout],
        mlp_ratio: float,
        drop_path_rate: float,
        attention: str,
        fused_attn: bool,
        conv_unit: Optional[ConvUnitSpec] = None,
    ) -> None:
        super().__init__()
        self.layout = tuple(layout)
        stem = layout[0]
        conv_unit = conv_unit or ConvUnitSpec(conv_op)
        self.stem = nn.Sequential(
            ConvNormAct(conv_unit, input_channels, stem.channels, stem.kernel),
            *(ConvNormAct(conv_unit, stem.channels, stem.channels, stem.kernel) for _ in range(stem.depth - 1)),
        )
        blocks = sum(s.depth for s in layout[1:])
        # plain floats, not torch.linspace: the network must also build on the meta device (the planner's estimate)
        rates = [drop_path_rate * i / (blocks - 1) for i in range(blocks)] if blocks > 1 else [drop_path_rate] * blocks
        stages, used = [], 0
        for prev, s in zip(layout[:-1], layout[1:]):
            in_channels = input_channels if s.index == 1 else prev.channels
            stages.append(
                TransformerStage(
                    conv_op, in_channels, s.channels, s.stride, s.depth, s.heads, s.window,
                    mlp_ratio, rates[used:used + s.depth], attention, fused_attn,
                )
            )
            used += s.depth
        self.stages = nn.ModuleList(stages)
        # keep only the stem convolutions' outputs, recompute the norms and activations in backward
        # (DynTransNet's selective_checkpointing)
        self.selective_stem = False

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        if self.selective_stem and torch.is_grad_enabled():
            skips = [selective_checkpoint(self.stem, x, policy=conv_policy)]
        else:
            skips = [self.stem(x)]
        features = x
        for stage in self.stages:
            features = stage(features)
            skips.append(features)
        return skips

    def saved_elements(self, voxels: Sequence[int]) -> Dict[str, float]:
        """Elements kept for backward per sample, by part, for ``voxels`` voxels (tokens) per stage
        (``stage_layout.voxels_per_stage``): the input (kept by the stem's and stage 1's first convolutions),
        the stem's conv units, the transformer stages."""
        return {
            "input": float(self.stem[0][0].in_channels * voxels[0]),
            "stem": self._stem_elements(voxels[0], self.selective_stem),
            "transformer": sum(stage.saved_elements(n) for stage, n in zip(self.stages, voxels[1:])),
        }

    def _stem_elements(self, voxels: int, selective: bool) -> float:
        """Each conv unit's (selective: only its convolution's output), and the stem's output (the skip)."""
        if not selective:
            return sum(unit.saved_elements(voxels) for unit in self.stem)
        return float(sum(unit[0].out_channels for unit in self.stem) + self.stem[-1][0].out_channels) * voxels

    def recomputed_elements(self, voxels: Sequence[int]) -> float:
        """The most elements a checkpointed part holds again at once in backward (0 without checkpointing)."""
        stem = self._stem_elements(voxels[0], False) if self.selective_stem else 0.0
        return max([stem, *(stage.recomputed_elements(n) for stage, n in zip(self.stages, voxels[1:]))])
