"""A planner that sizes patch and batch for DynTransNet's memory, like nnU-Net's residual-encoder presets.

nnU-Net's ``ExperimentPlanner`` shrinks the patch until the network's
``compute_conv_feature_map_size`` fits a reference value scaled to the GPU-memory target,
then spends what is left on batch size. This planner keeps all of that and changes one
thing: the estimate is DynTransNet's (its blocks' own counts, :mod:`nnunet_dyntransnet.memory_model`,
which include the transformer stages), in the units of nnU-Net's default U-Net, against the default planner's
reference (8 GB for its U-Net). So a DynTransNet plan for 8 GB asks for about the memory
nnU-Net's default plan asks for its own network.

Presets, as nnU-Net's ResEnc M / L / XL: 8, 24 and 40 GB. Preprocessing of ``2d`` and
``3d_fullres`` is nnU-Net's default (same spacing, normalisation, resampling), so those
configurations point at the default plans' data folders (``nnUNetPlans_3d_fullres``) and
reuse them; ``3d_lowres`` depends on the patch size and gets its own.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner

from nnunet_dyntransnet.memory_model import plan_feature_map_size

__all__ = ["PRESETS", "plans_name_for", "DynTransNetPlanner"]

# GPU-memory target (GB) -> plans name, as nnU-Net names its ResEnc presets
PRESETS: Dict[float, str] = {8: "nnUNetDynTransNetMPlans", 24: "nnUNetDynTransNetLPlans", 40: "nnUNetDynTransNetXLPlans"}


def plans_name_for(gpu_memory_target_in_gb: float) -> str:
    """``nnUNetDynTransNetMPlans`` for 8 GB (L: 24, XL: 40), else ``nnUNetDynTransNetPlans_<GB>G``."""
    if not math.isfinite(gpu_memory_target_in_gb) or gpu_memory_target_in_gb <= 0:
        raise ValueError(f"the GPU memory target must be a positive number of GB, got {gpu_memory_target_in_gb}; "
                         f"presets: 8 (M), 24 (L), 40 (XL)")
    return PRESETS.get(gpu_memory_target_in_gb, f"nnUNetDynTransNetPlans_{gpu_memory_target_in_gb:g}G")


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

