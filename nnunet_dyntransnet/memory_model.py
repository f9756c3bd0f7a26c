"""Activation-memory model of DynTransNet, in the units of nnU-Net's ``compute_conv_feature_map_size``.

nnU-Net's planners size patch and batch by comparing ``network.compute_conv_feature_map_size(patch)``
with a reference value calibrated for its U-Nets on a GPU-memory target. That method counts,
per sample, one element per voxel and channel of every convolution's output. Measured with
``torch.autograd.graph.saved_tensors_hooks``, nnU-Net's PlainConvUNet keeps
``PLAIN_SAVED_PER_COUNTED`` = 1.97 elements for backward per element it counts (a conv unit
keeps the conv output, for the norm, and the activation output), at every patch size.

So this module counts what DynTransNet keeps for backward, per sample, and divides by that
factor: the result is in nnU-Net's units, and nnU-Net's planning logic sizes DynTransNet's
patches for the same memory as its own U-Net's. Coefficients, in elements per token (or voxel)
and channel, measured the same way (``tests/test_memory_model.py`` checks the total against
the measurement for several plans and variants):

==========================  =====================================================
conv unit (conv-IN-LReLU)    2 (the stem; RM has two)
transformer block            18 (LN, qkv, rotary q/k, folded-bias q'/k', attention
                             output, LN, MLP 4C twice); 19 with plain MSA (each
                             attention class's ``block_saved_elements``)
strided projection + norms   3 per stage (conv output, stage norm input and output)
FM-M                         3.5 (+2 per voxel for the gate); concat 2; weighted sum 1
RM                           5 (its input and two conv units; the same without the residual)
level output                 1 (kept by the head and the next upsampling)
with activation checkpointing: first transformer stage 1 per block (its input); full-
resolution decoder level 2 (upsampled input and output) instead of fusion + RM + output
==========================  =====================================================

Attention itself adds nothing that grows with tokens x keys: fused attention (flash or
memory-efficient on CUDA, flash on CPU) keeps only the output and a log-sum-exp per query.
"""
from __future__ import annotations

from math import prod
from typing import Dict, List, Sequence

from nnunet_dyntransnet.attention import ATTENTIONS
from nnunet_dyntransnet.stage_layout import StageLayout

__all__ = ["PLAIN_SAVED_PER_COUNTED", "saved_activation_elements", "feature_map_size", "recomputed_elements"]

PLAIN_SAVED_PER_COUNTED = 1.973

CONV_UNIT = 2.0
STAGE_EXTRA = 3.0
FUSION = {"feature_mix": 3.5, "concat": 2.0, "weighted_sum": 1.0}
RM = 5.0
LEVEL_OUTPUT = 1.0
CHECKPOINTED_BLOCK = 1.0  # the block's input
CHECKPOINTED_LEVEL = 2.0  # the upsampled input and the level's output


def _voxels_per_stage(layout: Sequence[StageLayout], input_size: Sequence[int]) -> List[int]:
    """Voxels (tokens) of each stage's grid for an input of ``input_size``."""
    voxels, grid = [], list(input_size)
    for s in layout:
        grid = [g // st for g, st in zip(grid, s.stride)]
        voxels.append(prod(grid))
    return voxels


def _level_elements(fusion: str, channels: int) -> float:
    """Elements a decoder level keeps per voxel: its fusion, RM and output. "No RM" keeps RM's two conv units
    (only the residual addition goes, which keeps nothing); FM-M adds its gate's one-channel map, before and
    after the sigmoid."""
    return (FUSION[fusion] + RM + LEVEL_OUTPUT) * channels + (2.0 if fusion == "feature_mix" else 0.0)


def saved_activation_elements(layout: Sequence[StageLayout], input_size: Sequence[int], input_channels: int,
                              fusion: str, attention: str, checkpointing: bool = False) -> Dict[str, float]:
    """Elements kept for backward per sample, by part, for an input of ``input_size`` voxels.

    With ``checkpointing`` (DynTransNet's ``activation_checkpointing``) the first transformer
    stage keeps only each block's input, and the full-resolution decoder level only its
    upsampled input and its output; their activations are recomputed one block (or level) at
    a time in backward, which this count, like nnU-Net's, leaves out.
    """
    grids = _voxels_per_stage(layout, input_size)
    stem = layout[0]
    parts = {"input": float(input_channels * grids[0]), "stem": CONV_UNIT * stem.depth * stem.channels * grids[0]}
    block = ATTENTIONS[attention].block_saved_elements
    per_block = [CHECKPOINTED_BLOCK if checkpointing and i == 1 else block for i in range(len(layout))]
    parts["transformer"] = sum((STAGE_EXTRA + per_block[s.index] * s.depth) * s.channels * n
                               for s, n in zip(layout[1:], grids[1:]))
    parts["decoder"] = sum((CHECKPOINTED_LEVEL * s.channels if checkpointing and s.index == 0
                            else _level_elements(fusion, s.channels)) * n for s, n in zip(layout[:-1], grids[:-1]))
    return parts


def feature_map_size(layout: Sequence[StageLayout], input_size: Sequence[int], input_channels: int, fusion: str,
                     attention: str, checkpointing: bool = False) -> int:
    """The total of :func:`saved_activation_elements` in nnU-Net's units (divided by PLAIN_SAVED_PER_COUNTED)."""
    parts = saved_activation_elements(layout, input_size, input_channels, fusion, attention, checkpointing)
    return int(round(sum(parts.values()) / PLAIN_SAVED_PER_COUNTED))


def recomputed_elements(layout: Sequence[StageLayout], input_size: Sequence[int], fusion: str, attention: str) -> float:
    """With checkpointing, the most elements per sample alive at once again in backward: the largest of one
    recomputed block of the first transformer stage and the recomputed full-resolution decoder level.

    :func:`saved_activation_elements` leaves this transient out (as nnU-Net's count leaves out
    every transient); the fit-to-GPU decision (``gpu_fit``) adds it to the peak.
    """
    grids = _voxels_per_stage(layout, input_size)
    block = ATTENTIONS[attention].block_saved_elements * layout[1].channels * grids[1] if len(layout) > 1 else 0.0
    return max(block, _level_elements(fusion, layout[0].channels) * grids[0])
