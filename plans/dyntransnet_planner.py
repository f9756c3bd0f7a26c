"""A planner that sizes patch and batch for DynTransNet's memory, like nnU-Net's residual-encoder presets.

nnU-Net's ``ExperimentPlanner`` shrinks the patch until the network's
``compute_conv_feature_map_size`` fits a reference value scaled to the GPU-memory target,
then spends what is left on batch size. This planner keeps all of that and changes one
thing: the estimate is DynTransNet's (its blocks' own counts, :mod:`nnunet_dyntransnet.network.units`,
which include the transformer stages; :mod:`nnunet_dyntransnet.network.units`), in the units of nnU-Net's default U-Net, against the default planner's
reference (8 GB for its U-Net). So a DynTransNet plan for 8 GB asks for about the memory
nnU-Net's default plan asks for its own network.

Presets, as nnU-Net's ResEnc M / L / XL: 8, 24 and 40 GB. Preprocessing of ``2d`` and
``3d_fullres`` is nnU-Net's default (same spacing, normalisation, resampling), so those
configurations point at the default plans' data folders (``nnUNetPlans_3d_fullres``) and
reuse them; ``3d_lowres`` depends on the patch size and gets its own.
"""
from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch
from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner

from nnunet_dyntransnet.network import DynTransNet


__all__ = ["PRESETS", "plans_name_for", "plan_feature_map_size", "DynTransNetPlanner", "smallest_possible_target",
           "smallest_target_for"]

# GPU-memory target (GB) -> plans name, as nnU-Net names its ResEnc presets
PRESETS: Dict[float, str] = {8: "nnUNetDynTransNetMPlans", 24: "nnUNetDynTransNetLPlans", 40: "nnUNetDynTransNetXLPlans"}


def plans_name_for(gpu_memory_target_in_gb: float) -> str:
    """``nnUNetDynTransNetMPlans`` for 8 GB (L: 24, XL: 40), else ``nnUNetDynTransNetPlans_<GB>G``."""
    if not math.isfinite(gpu_memory_target_in_gb) or gpu_memory_target_in_gb <= 0:
        raise ValueError(f"the GPU memory target must be a positive number of GB, got {gpu_memory_target_in_gb}; "
                         f"presets: 8 (M), 24 (L), 40 (XL)")
    return PRESETS.get(gpu_memory_target_in_gb, f"nnUNetDynTransNetPlans_{gpu_memory_target_in_gb:g}G")


def plan_feature_map_size(patch_size: Sequence[int], input_channels: int, output_channels: int,
                          arch_kwargs: Mapping[str, Any], network_options: Mapping[str, Any]) -> int:
    """``compute_conv_feature_map_size`` of the DynTransNet built from a U-Net plan's ``arch_kwargs`` with
    ``network_options`` (a trainer's), at ``patch_size``. The network is built on the meta device: no
    memory, no initialisation cost, the same modules (so the same count) as the trained one."""
    plan = SimpleNamespace(patch_size=patch_size, network_arch_init_kwargs=arch_kwargs)  # a ConfigurationManager's view
    with torch.device("meta"):
        net = DynTransNet.from_plan(plan, input_channels, output_channels, **network_options)
    return net.compute_conv_feature_map_size(patch_size)


class DynTransNetPlanner(ExperimentPlanner):
    """nnU-Net's default planner with DynTransNet's memory estimate; plans named after the target."""

    # the network the estimate assumes: the one nnUNetTrainerDynTransNet builds
    trainer_class_name = "nnUNetTrainerDynTransNet"

    def __init__(self, dataset_name_or_id, gpu_memory_target_in_gb: float = 8,
                 preprocessor_name: str = "DefaultPreprocessor", plans_name: Optional[str] = None,
                 overwrite_target_spacing=None, suppress_transpose: bool = False):
        super().__init__(dataset_name_or_id, gpu_memory_target_in_gb, preprocessor_name,
                         plans_name or plans_name_for(gpu_memory_target_in_gb), overwrite_target_spacing,
                         suppress_transpose)

    @classmethod
    def network_options(cls) -> dict:
        """The options the trainer builds its DynTransNet with (its ``network_options``)."""
        from nnunet_dyntransnet import trainers

        return dict(getattr(trainers, cls.trainer_class_name).network_options)

    @staticmethod
    def static_estimate_VRAM_usage(patch_size: Tuple[int, ...], input_channels: int, output_channels: int,
                                   arch_class_name: str, arch_kwargs: dict, arch_kwargs_req_import) -> int:
        # nnU-Net asks for the estimate of the U-Net it would build; answer with the DynTransNet
        # that nnUNetTrainerDynTransNet builds from the same plan (built on the meta device: no memory).
        return plan_feature_map_size(patch_size, input_channels, output_channels, arch_kwargs,
                                     DynTransNetPlanner.network_options())

    def generate_data_identifier(self, configuration_name: str) -> str:
        if configuration_name in ("2d", "3d_fullres"):
            return "nnUNetPlans_" + configuration_name  # same preprocessing as the default plans: share the data
        return self.plans_identifier + "_" + configuration_name



def _smallest_plan_kwargs(dims: int) -> dict:
    """nnU-Net's architecture entries of the smallest plan DynTransNet can be built from: two stages, one
    axis pooled once (nnU-Net pools an axis only while it keeps 4 voxels, so that axis has 8)."""
    import torch

    return {"n_stages": 2, "features_per_stage": [32, 64], "conv_op": getattr(torch.nn, f"Conv{dims}d"),
            "kernel_sizes": [[3] * dims] * 2, "strides": [[1] * dims, [1] * (dims - 1) + [2]],
            "n_conv_per_stage": [2, 2], "n_conv_per_stage_decoder": [2], "conv_bias": True,
            "norm_op": getattr(torch.nn, f"InstanceNorm{dims}d"), "norm_op_kwargs": {"eps": 1e-5, "affine": True},
            "dropout_op": None, "dropout_op_kwargs": None, "nonlin": torch.nn.LeakyReLU,
            "nonlin_kwargs": {"inplace": True}}


def smallest_possible_target() -> float:
    """A GPU-memory target (GB) below which no dataset can be planned: nnU-Net plans 2d and 3d_fullres, and
    each needs at least the estimate of a 2-stage DynTransNet on a one-axis patch of 8 (one input channel,
    two classes), against that configuration's reference. Checked before any work; a dataset needs more."""
    floors = []
    # nnU-Net's UNet_reference_val_2d / _3d for its 8 GB (set in ExperimentPlanner.__init__, which needs a
    # dataset's fingerprint: this check runs before there is one)
    for dims, reference in ((2, 85_000_000), (3, 560_000_000)):
        patch = (1,) * (dims - 1) + (8,)
        estimate = DynTransNetPlanner.static_estimate_VRAM_usage(patch, 1, 2, "", _smallest_plan_kwargs(dims), ())
        floors.append(estimate / reference * 8)
    return max(floors)


def smallest_target_for(dataset_id: int, above: float) -> Optional[float]:
    """The smallest target of the form ``above * 2**k`` (k >= 1) that plans this dataset, or None; plans in
    memory only (nothing is written)."""
    import contextlib
    import io

    class _Probe(DynTransNetPlanner):
        def save_plans(self, plans):  # a probe: never write a plans file
            pass

    target = above
    for _ in range(60):
        target *= 2
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                _Probe(dataset_id, target, plans_name="probe").plan_experiment()
            return target
        except ValueError:
            continue
    return None
