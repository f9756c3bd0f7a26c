"""Activation memory in the units of nnU-Net's ``compute_conv_feature_map_size``, and DynTransNet's estimate for a plan.

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
DynTransNet's patches for the same memory as its own U-Net's. ``tests/test_memory_model.py``
checks the sum against autograd's saved tensors for several plans and variants. At head dim 32
and MLP ratio 4 a transformer block keeps about 18 elements per token and channel, a conv unit 2,
FM-M 3.5 (+2 per voxel for its gate) and RM 5.

Attention adds nothing that grows with tokens x keys: fused attention (flash or memory-efficient
on CUDA, flash on CPU) keeps only the output and a log-sum-exp per query.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = ["PLAIN_SAVED_PER_COUNTED", "in_nnunet_units", "plan_feature_map_size"]

PLAIN_SAVED_PER_COUNTED = 1.973


def in_nnunet_units(saved_elements: float) -> int:
    """Elements kept for backward, in the units of nnU-Net's ``compute_conv_feature_map_size``."""
    return int(round(saved_elements / PLAIN_SAVED_PER_COUNTED))


def plan_feature_map_size(patch_size: Sequence[int], input_channels: int, output_channels: int,
                          arch_kwargs: Mapping[str, Any], network_options: Mapping[str, Any]) -> int:
    """``compute_conv_feature_map_size`` of the DynTransNet built from a U-Net plan's ``arch_kwargs`` with
    ``network_options`` (a trainer's), at ``patch_size``. The network is built on the meta device: no
    memory, no initialisation cost, the same modules (so the same count) as the trained one."""
    from types import SimpleNamespace

    import torch

    from nnunet_dyntransnet.network import DynTransNet  # here, not at the top: network.py imports this module

    plan = SimpleNamespace(patch_size=patch_size, network_arch_init_kwargs=arch_kwargs)  # a ConfigurationManager's view
    with torch.device("meta"):
        net = DynTransNet.from_plan(plan, input_channels, output_channels, **network_options)
    return net.compute_conv_feature_map_size(patch_size)
