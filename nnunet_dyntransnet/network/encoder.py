"""DynTransNet encoder: a full-resolution convolutional stem, then hierarchical D-MSA transformer stages."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Type

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from nnunet_dyntransnet.network.checkpointing import CheckpointingPolicy, conv_policy, selective_checkpoint
from nnunet_dyntransnet.network.conv_unit import ConvNormAct, ConvUnitSpec
from nnunet_dyntransnet.network.stage_layout import StageLayout
from nnunet_dyntransnet.network.transformer import TransformerStage

__all__ = ["DynTransEncoder"]


class DynTransEncoder(nn.Module):
    """Stem, convolutional stages, transformer stages, returning one skip per stage.

    The stem (``depth`` conv units at full resolution, the same convolutions as stage 0 of
    nnU-Net's U-Net, so the costliest resolution costs no more) gives the decoder a
    full-resolution skip, which a transformer that starts from patches would lose. The layout's
    further ``"conv"`` stages (``conv_stages``) are nnU-Net's U-Net stages too: the first unit
    downsamples by its stride. The first transformer stage embeds the *input* in patches when it
    is stage 1 (paper Algorithm 1), else the last convolutional stage's features; later stages
    merge the previous stage's tokens. Stochastic depth grows linearly over all transformer blocks.

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
        patch_embedding: str = "linear",
    ) -> None:
        super().__init__()
        self.layout = tuple(layout)
        stem = layout[0]
        conv_unit = conv_unit or ConvUnitSpec(conv_op)
        self.stem = nn.Sequential(
            ConvNormAct(conv_unit, input_channels, stem.channels, stem.kernel),
            *(ConvNormAct(conv_unit, stem.channels, stem.channels, stem.kernel) for _ in range(stem.depth - 1)),
        )
        self.conv_stages = nn.ModuleList(
            nn.Sequential(ConvNormAct(conv_unit, prev.channels, s.channels, s.kernel, s.stride),
                          *(ConvNormAct(conv_unit, s.channels, s.channels, s.kernel) for _ in range(s.depth - 1)))
            for prev, s in zip(layout[:-1], layout[1:]) if s.kind == "conv")
        blocks = sum(s.depth for s in layout[1:] if s.kind != "conv")
        # plain floats, not torch.linspace: the network must also build on the meta device (the planner's estimate)
        rates = [drop_path_rate * i / (blocks - 1) for i in range(blocks)] if blocks > 1 else [drop_path_rate] * blocks
        stages, used = [], 0
        for prev, s in zip(layout[:-1], layout[1:]):
            if s.kind == "conv":
                continue
            in_channels = input_channels if s.index == 1 else prev.channels
            stages.append(
                TransformerStage(
                    conv_op, in_channels, s.channels, s.stride, s.depth, s.heads, s.window,
                    mlp_ratio, rates[used:used + s.depth], attention, fused_attn, patch_embedding,
                )
            )
            used += s.depth
        self.stages = nn.ModuleList(stages)
        # keep only the stem convolutions' outputs, recompute the norms and activations in backward
        # (set_checkpointing)
        self.selective_stem = False

    def set_checkpointing(self, policy: CheckpointingPolicy) -> None:
        """The encoder's share of the network's policy: the stem (and convolutional stages) selectively, the first
        transformer stage whole under ``activation``, the transformer stages that ``selective`` covers."""
        self.selective_stem = policy.covers("stem")
        for units in (self.stem, *self.conv_stages):  # a recomputed unit whose norm returns a view runs its
            for unit in units.modules():              # nonlinearity out of place (ConvNormAct.allow_in_place)
                if isinstance(unit, ConvNormAct):
                    unit.allow_in_place(not self.selective_stem)
        for i, stage in enumerate(self.stages):
            stage.checkpoint_blocks = policy.activation and i == 0
            stage.selective_blocks = policy.covers("transformer", i)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        if self.selective_stem and torch.is_grad_enabled():
            skips = [selective_checkpoint(self.stem, x, policy=conv_policy)]
        else:
            skips = [self.stem(x)]
        for stage in self.conv_stages:
            skips.append(selective_checkpoint(stage, skips[-1], policy=conv_policy)
                         if self.selective_stem and torch.is_grad_enabled() else stage(skips[-1]))
        features = x if not len(self.conv_stages) else skips[-1]
        for stage in self.stages:
            features = stage(features)
            skips.append(features)
        return skips

    def saved_elements(self, voxels: Sequence[int]) -> Dict[str, float]:
        """Elements kept for backward per sample, by part, for ``voxels`` voxels (tokens) per stage
        (``stage_layout.voxels_per_stage``): the input (kept by the stem's and stage 1's first convolutions),
        the stem's and the convolutional stages' conv units (both under "stem"), the transformer stages."""
        k = 1 + len(self.conv_stages)
        return {
            "input": float(self.stem[0][0].in_channels * voxels[0]),
            "stem": sum(self._units_elements(units, n, self.selective_stem)
                        for units, n in zip([self.stem, *self.conv_stages], voxels[:k])),
            "transformer": sum(stage.saved_elements(n) for stage, n in zip(self.stages, voxels[k:])),
        }

    @staticmethod
    def _units_elements(units: nn.Sequential, voxels: int, selective: bool) -> float:
        """Each conv unit's (selective: only its convolution's output), and the last one's output (the skip)."""
        if not selective:
            return sum(unit.saved_elements(voxels) for unit in units)
        return float(sum(unit[0].out_channels for unit in units) + units[-1][0].out_channels) * voxels

    def recomputed_elements(self, voxels: Sequence[int]) -> float:
        """The most elements a checkpointed part holds again at once in backward (0 without checkpointing)."""
        k = 1 + len(self.conv_stages)
        convs = [self._units_elements(units, n, False) for units, n in zip([self.stem, *self.conv_stages], voxels[:k])]
        return max([*(convs if self.selective_stem else [0.0]),
                    *(stage.recomputed_elements(n) for stage, n in zip(self.stages, voxels[k:]))])
