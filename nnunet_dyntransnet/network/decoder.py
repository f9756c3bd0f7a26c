"""DynTransNet decoder: at every level, transposed-conv upsampling -> skip fusion (FM-M) -> RM -> 1x1 head."""
from __future__ import annotations

from typing import Iterator, List, Optional, Sequence, Tuple, Type, Union

import torch
from dynamic_network_architectures.building_blocks.helper import get_matching_convtransp
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.utils.checkpoint import checkpoint

from nnunet_dyntransnet.network.checkpointing import CheckpointingPolicy, conv_policy, selective_checkpoint
from nnunet_dyntransnet.network.conv_unit import ConvNormAct, ConvUnitSpec
from nnunet_dyntransnet.network.decoder_blocks import FUSIONS, ResidualRefine
from nnunet_dyntransnet.network.pointwise import pointwise_conv
from nnunet_dyntransnet.network.stage_layout import StageLayout

__all__ = ["DynTransDecoder", "FUSIONS", "RM_SHORTCUTS"]

# what RM's residual adds back at a decoder level: FM-M's output (the paper) or the upsampled decoder map
RM_SHORTCUTS = ("fused", "decoder")


class DynTransDecoder(nn.Module):
    """U-Net decoder over the encoder's skips, with one segmentation head per level.

    Heads are always built (so checkpoints load with deep supervision on or off);
    ``deep_supervision`` decides what ``forward`` returns. nnU-Net's trainer switches it
    through ``network.decoder.deep_supervision``.

    Args:
        conv_op: ``nn.Conv2d`` or ``nn.Conv3d``.
        layout: the encoder's stage layout.
        num_classes: output channels of each head (logits; no softmax or sigmoid).
        fusion: ``"feature_mix"`` (FM-M), ``"concat"`` or ``"weighted_sum"`` (the paper's ablations).
        residual_refine: the RM's residual connection at each level (False: the "no RM" ablation,
            which keeps the two conv units; see :class:`ResidualRefine`).
        rm_post_activation: RM's nonlinearity once more after its residual sum (:class:`ResidualRefine`).
        rm_shortcut: what RM's residual adds back: ``"fused"``, FM-M's output, which RM refines (the paper's
            Algorithm 3), or ``"decoder"``, the upsampled decoder map ``D`` that entered FM-M. With ``"fused"`` the
            head reads the skip's full-resolution encoder features through FM-M's 1x1 mix, past RM's spatial
            convolutions; with ``"decoder"`` the skip reaches the head only through them.
        deep_supervision: return every level's logits, not only full resolution.
        conv_unit: the layers of RM's conv units (the plan's; default nnU-Net's).
        units_per_level: RM's conv units per level in nnU-Net's order, deepest level first (the plan's
            ``n_conv_per_stage_decoder``; default 2 everywhere, the paper's RM).

    Shapes: ``forward(skips)`` with ``skips[i]`` ``(B, C_i, *grid_i)`` returns ``(B, num_classes, *grid_0)``,
    or with deep supervision a list of ``(B, num_classes, *grid_i)`` for ``i = 0 .. n_stages - 2``,
    full resolution first (nnU-Net's order).
    """

    def __init__(
        self,
        conv_op: Type[_ConvNd],
        layout: Sequence[StageLayout],
        num_classes: int,
        fusion: str = "feature_mix",
        residual_refine: bool = True,
        deep_supervision: bool = True,
        conv_unit: Optional[ConvUnitSpec] = None,
        units_per_level: Sequence[int] = (),
        rm_post_activation: bool = False,
        rm_shortcut: str = "fused",
    ) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion={fusion!r} is not one of {sorted(FUSIONS)}")
        if rm_shortcut not in RM_SHORTCUTS:
            raise ValueError(f"rm_shortcut={rm_shortcut!r} is not one of {list(RM_SHORTCUTS)}")
        if rm_shortcut != "fused" and not residual_refine:
            raise ValueError(f"rm_shortcut={rm_shortcut!r} needs RM's residual (residual_refine=True): without it "
                             f"nothing is added back")
        self.shortcut_from_decoder = rm_shortcut == "decoder"
        self.deep_supervision = deep_supervision
        transp = get_matching_convtransp(conv_op)
        levels = range(len(layout) - 2, -1, -1)  # deepest decoder level first
        self.upsample = nn.ModuleList(
            transp(layout[i + 1].channels, layout[i].channels, layout[i + 1].stride, layout[i + 1].stride) for i in levels
        )
        self.fuse = nn.ModuleList(
            FUSIONS[fusion](conv_op, layout[i].channels, layout[i].channels, layout[i].channels) for i in levels
        )
        conv_unit = conv_unit or ConvUnitSpec(conv_op)
        units = list(units_per_level) or [2] * (len(layout) - 1)
        if len(units) != len(layout) - 1:
            raise ValueError(f"n_conv_per_stage_decoder has {len(units)} entries; this plan has {len(layout) - 1} "
                             f"decoder levels")
        self.refine = nn.ModuleList(
            ResidualRefine(conv_unit, layout[i].channels, layout[i].kernel, residual=residual_refine,
                           units=int(units[len(layout) - 2 - i]), post_activation=rm_post_activation)
            for i in levels
        )
        self.heads = nn.ModuleList(conv_op(layout[i].channels, num_classes, 1) for i in levels)
        # decoder levels (0 = full resolution) whose fusion and RM are recomputed in backward rather than kept
        # (the policy's activation), and levels that keep only their spatial convolutions' outputs (its selective
        # parts and depth): set_checkpointing
        self.checkpoint_levels: frozenset = frozenset()
        self.selective_levels: frozenset = frozenset()

    def set_checkpointing(self, policy: CheckpointingPolicy) -> None:
        """The decoder's share of the network's policy: the full-resolution level whole under ``activation``, the
        levels that ``selective`` covers keep only their spatial convolutions' outputs."""
        self.checkpoint_levels = frozenset({0}) if policy.activation else frozenset()
        self.selective_levels = frozenset(level for level in range(len(self.refine)) if policy.covers("decoder", level))
        last = len(self.refine) - 1
        for n, refine in enumerate(self.refine):  # a recomputed unit whose norm returns a view runs its
            for unit in refine.modules():         # nonlinearity out of place (ConvNormAct.allow_in_place)
                if isinstance(unit, ConvNormAct):
                    unit.allow_in_place(last - n not in self.selective_levels)

    def _fuse_and_refine(self, n: int, decoder: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """A level recomputed by a checkpoint: its fusion runs without a recomputation of its own (FM-M's would
        nest in the level's and run FM-M three times)."""
        return self.refine[n](self.fuse[n].unchecked(decoder, skip), self._shortcut(decoder))

    def _shortcut(self, decoder: torch.Tensor) -> Optional[torch.Tensor]:
        """What RM adds back besides its own input: the upsampled decoder map, or nothing (RM's input itself)."""
        return decoder if self.shortcut_from_decoder else None

    def _recomputed(self, level: int) -> bool:
        """Whether a checkpoint recomputes the decoder level (0 = full resolution) in backward, whole or selectively."""
        return level in self.checkpoint_levels or level in self.selective_levels

    def _levels(self, voxels: Sequence[int]) -> Iterator[Tuple[int, int, int]]:
        """``(n, level, voxels)`` for every decoder level: module index, level (0 = full resolution), its voxels."""
        last = len(self.heads) - 1
        return ((n, last - n, voxels[last - n]) for n in range(len(self.heads)))

    def _level_elements(self, n: int, voxels: int, recomputed: bool = False) -> float:
        # the fusion's (all it keeps when the level is recomputed, see _fuse_and_refine), RM's, and the level's
        # output (kept by its head and the next upsampling); without RM's residual addition the output is RM's
        # last activation, which RM already counts
        output = self.heads[n].in_channels * voxels if self.refine[n].residual else 0.0
        fusion = self.fuse[n].kept_elements(voxels) if recomputed else self.fuse[n].saved_elements(voxels)
        return fusion + self.refine[n].saved_elements(voxels) + output

    def _selective_level_elements(self, n: int, voxels: int) -> float:
        # the upsampled input, RM's two spatial convolutions' outputs (FM-M has only 1x1 convolutions), the output
        channels = self.heads[n].in_channels
        return (2.0 * channels + sum(unit[0].out_channels for unit in self.refine[n].body)) * voxels

    def saved_elements(self, voxels: Sequence[int]) -> float:
        """Elements kept for backward per sample for ``voxels`` voxels per stage of the layout
        (``stage_layout.voxels_per_stage``). A checkpointed level keeps only its upsampled input and its output;
        a selectively checkpointed one also its spatial convolutions' outputs."""
        def level_elements(n: int, level: int, v: int) -> float:
            if level in self.checkpoint_levels:
                return 2.0 * self.heads[n].in_channels * v
            return self._selective_level_elements(n, v) if level in self.selective_levels else self._level_elements(n, v)

        return sum(level_elements(n, level, v) for n, level, v in self._levels(voxels))

    def recomputed_elements(self, voxels: Sequence[int]) -> float:
        """The most elements a (selectively) checkpointed level, or FM-M's recomputation, holds again at once in
        backward."""
        levels = list(self._levels(voxels))
        whole = max((self._level_elements(n, v, recomputed=True) for n, level, v in levels if self._recomputed(level)),
                    default=0.0)
        fusion = max((self.fuse[n].recomputed_elements(v) for n, level, v in levels if not self._recomputed(level)),
                     default=0.0)
        return max(whole, fusion)

    def forward(self, skips: List[torch.Tensor]) -> Union[torch.Tensor, List[torch.Tensor]]:
        x = skips[-1]
        outputs = []
        last = len(self.heads) - 1
        for n, (up, head) in enumerate(zip(self.upsample, self.heads)):
            level = last - n  # 0 is full resolution
            if level in self.checkpoint_levels and torch.is_grad_enabled():
                x = checkpoint(self._fuse_and_refine, n, up(x), skips[-(n + 2)], use_reentrant=False)
            elif level in self.selective_levels and torch.is_grad_enabled():
                x = selective_checkpoint(self._fuse_and_refine, n, up(x), skips[-(n + 2)], policy=conv_policy)
            else:
                decoder = up(x)
                x = self.refine[n](self.fuse[n](decoder, skips[-(n + 2)]), self._shortcut(decoder))
            if self.deep_supervision or n == last:
                outputs.append(pointwise_conv(x, head.weight, head.bias))
        outputs.reverse()
        return outputs if self.deep_supervision else outputs[0]
