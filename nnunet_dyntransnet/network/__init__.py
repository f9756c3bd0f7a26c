"""DynTransNet itself: the network of Zheng et al. (2025) and its parts; imports no tool of this package.

Read it top down: :mod:`.dyntransnet` (the U-shaped network, built from an nnU-Net plan),
:mod:`.stage_layout` (grid, window and heads per stage), :mod:`.encoder` (conv stem, patch
embedding, transformer stages), :mod:`.transformer` (the block), :mod:`.attention` (D-MSA and
plain MSA), :mod:`.windows` and :mod:`.rotary` (local windows, positions), :mod:`.decoder`
and :mod:`.decoder_blocks` (FM-M, RM, the ablations' fusions), :mod:`.checkpointing`
(selective activation checkpointing) and :mod:`.units` (nnU-Net's memory unit).
"""
from nnunet_dyntransnet.network.dyntransnet import DynTransNet, capped_widths, network_defaults

__all__ = ["DynTransNet", "capped_widths", "network_defaults"]
