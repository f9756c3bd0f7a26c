"""Trainers for ``dyntransnet_demo``: nnUNetTrainerDynTransNet for a few minutes instead of 1000 epochs.

The epoch count comes from ``DYNTRANSNET_DEMO_EPOCHS``; ``dyntransnet_demo`` sets it as a cap and
trains for a time budget instead (``DYNTRANSNET_TRAIN_MINUTES``, ``budget.py``). Prediction ignores both. The CPU variant narrows the network so a 2-core machine trains it in
minutes; the GPU variant keeps the plan's widths.
"""
from __future__ import annotations

import os

import torch
from torch import nn

from nnunet_dyntransnet.network import DynTransNet, capped_widths
from nnunet_dyntransnet.trainers.ablations import nnUNetTrainerDynTransNet_Baseline
from nnunet_dyntransnet.trainers.dyntransnet import nnUNetTrainerDynTransNet

__all__ = ["nnUNetTrainerDynTransNetDemoGPU", "nnUNetTrainerDynTransNetDemoCPU", "nnUNetTrainerDynTransNetDemoCPU_Baseline"]


class nnUNetTrainerDynTransNetDemoGPU(nnUNetTrainerDynTransNet):
    """The real network, trained for ``DYNTRANSNET_DEMO_EPOCHS`` epochs of ``DYNTRANSNET_DEMO_ITERATIONS`` (50)
    iterations (warm-up: a tenth)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = int(os.environ.get("DYNTRANSNET_DEMO_EPOCHS", "20"))
        self.num_iterations_per_epoch = int(os.environ.get("DYNTRANSNET_DEMO_ITERATIONS", "50"))
        self.num_val_iterations_per_epoch = 5
        self.warmup_duration_whole_net = max(1, self.num_epochs // 10)
        # a short schedule needs a larger step than the 1000-epoch recipe
        self.initial_lr = 2e-3

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        # The phantom's liver always lies on the patient's right, as in real scans: mirroring would
        # hide that cue, and test-time mirroring costs 8 forward passes per patch (nnU-Net's
        # nnUNetTrainerNoMirroring makes the same choice for such data).
        rotation, dummy_2d, initial_patch_size, _ = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        self.inference_allowed_mirroring_axes = None
        return rotation, dummy_2d, initial_patch_size, None


class nnUNetTrainerDynTransNetDemoCPU(nnUNetTrainerDynTransNetDemoGPU):
    """As the GPU variant, with widths capped (8, 16, 32, 64, 64, ...), 16 channels per head, 4-token
    windows and global attention from 512 tokens down: 0.52 s a step at 32x64x64 on 2 cores,
    against 2.3 s with the default 8-token windows."""

    network_options = dict(head_dim=16, window_size=4, max_global_tokens=512)

    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager, num_input_channels: int,
                                   num_output_channels: int, enable_deep_supervision: bool = True) -> nn.Module:
        return DynTransNet.from_plan(configuration_manager, num_input_channels, num_output_channels,
                                     enable_deep_supervision, features_per_stage=capped_widths(configuration_manager, 8, 64),
                                     **cls.network_options)


class nnUNetTrainerDynTransNetDemoCPU_Baseline(nnUNetTrainerDynTransNetDemoCPU):
    """The CPU demo network without D-MSA, FM-M and RM (the paper's Table 3 baseline); the example
    report in docs/report compares the two."""

    network_options = {**nnUNetTrainerDynTransNetDemoCPU.network_options,
                       **nnUNetTrainerDynTransNet_Baseline.network_options}
