"""``nnUNetTrainerDynTransNet_Paper``: the paper's Table 1 recipe on nnU-Net's pipeline.

Adam, lr 1e-4, Dice loss alone, 300 epochs, batch size 2. The paper names no learning-rate
schedule; this keeps nnU-Net's polynomial decay (from ``nnUNetTrainerVanillaAdam``). Data
sampling and augmentation are nnU-Net's, which covers the paper's "balanced foreground /
background patches, flips, rotations, scaling, shifting".
"""
from __future__ import annotations

import torch
from nnunetv2.training.nnUNetTrainer.variants.loss.nnUNetTrainerDiceLoss import nnUNetTrainerDiceLoss
from nnunetv2.training.nnUNetTrainer.variants.optimizer.nnUNetTrainerAdam import nnUNetTrainerVanillaAdam
from torch import nn

from nnunet_dyntransnet.network import DynTransNet

__all__ = ["nnUNetTrainerDynTransNet_Paper"]


class nnUNetTrainerDynTransNet_Paper(nnUNetTrainerDiceLoss, nnUNetTrainerVanillaAdam):
    """DynTransNet with Dice loss (nnUNetTrainerDiceLoss) and Adam (nnUNetTrainerVanillaAdam), lr 1e-4, 300 epochs, batch 2."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.initial_lr = 1e-4
        self.num_epochs = 300

    @staticmethod
    def build_network_architecture(plans_manager, configuration_manager, num_input_channels: int,
                                   num_output_channels: int, enable_deep_supervision: bool = True) -> nn.Module:
        return DynTransNet.from_plan(configuration_manager, num_input_channels, num_output_channels,
                                     enable_deep_supervision)

    def _set_batch_size_and_oversample(self):
        # the paper's batch size, whatever the plan says; nnU-Net then splits it over DDP workers
        self.configuration_manager.configuration["batch_size"] = 2
        super()._set_batch_size_and_oversample()
