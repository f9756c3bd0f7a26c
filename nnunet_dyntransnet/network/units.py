"""Activation memory in the units of nnU-Net's ``compute_conv_feature_map_size`` (a leaf: imports nothing).

nnU-Net's planners size patch and batch by comparing ``network.compute_conv_feature_map_size(patch)``
with a reference value calibrated for its U-Nets on a GPU-memory target. That method counts,
per sample, one element per voxel and channel of every convolution's output. Measured with
``torch.autograd.graph.saved_tensors_hooks``, nnU-Net's PlainConvUNet keeps
``PLAIN_SAVED_PER_COUNTED`` = 1.97 elements for backward per element it counts (a conv unit
keeps the conv output, for the norm, and the activation output), at every patch size.

DynTransNet's blocks each report what they keep for backward (``saved_elements``, from their
own widths: the conv units, the transformer blocks and their attention, the fusions, RM); the
network sums them (``DynTransNet.saved_activation_elements``) and divides by that factor, so its
``compute_conv_feature_map_size`` is in nnU-Net's units and nnU-Net's planning logic sizes
DynTransNet's patches for the same memory as its own U-Net's. ``tests/network/test_memory_model.py``
checks the sum against autograd's saved tensors for several plans and variants. At head dim 32
and MLP ratio 4 a transformer block keeps about 18 elements per token and channel, a conv unit 2,
FM-M 1 (it is recomputed in backward; 3, +1 per voxel for its gate, when kept) and RM 5.

Attention adds nothing that grows with tokens x keys: fused attention (flash or memory-efficient
on CUDA, flash on CPU) keeps only the output and a log-sum-exp per query.
"""
from __future__ import annotations

__all__ = ["PLAIN_SAVED_PER_COUNTED", "in_nnunet_units"]

PLAIN_SAVED_PER_COUNTED = 1.973


def in_nnunet_units(saved_elements: float) -> int:
    """Elements kept for backward, in the units of nnU-Net's ``compute_conv_feature_map_size``."""
    return int(round(saved_elements / PLAIN_SAVED_PER_COUNTED))
