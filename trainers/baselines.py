"""The paper's baselines (Tables 4 and 5) as nnU-Net trainers: one class per network, one recipe for all.

Each trainer trains the network of ``nnunet_dyntransnet.baseline_networks.BASELINES[KEY]`` (MONAI or
segmentation-models-pytorch, built from the plan) with the recipe nnUNetTrainerDynTransNet
uses (``recipe.py``: AdamW, lr 3e-4, warm-up, polynomial decay, clipping; Dice + CE), so the
comparison table compares networks, not recipes. Deep supervision is off (one output).

A network that needs its input divisible by some number gets the plan's patch rounded up
to it, in the configuration it trains and predicts with, and the log says so; a
configuration it cannot run (a 2D network on ``3d_fullres``) is refused when the trainer is
created, before nnU-Net creates the fold folder (``refusal.py``).

The ``_lr1e4`` variants (AdamW at lr 1e-4) are for the transformers that nnU-Net users report
as unstable at higher learning rates inside nnU-Net (nnU-Net issues #2069, #2197, #2894).
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_dyntransnet.baseline_networks import BASELINES, BaselineConfigurationError, adapt_configuration, build_baseline
from nnunet_dyntransnet.trainers.recipe import TransformerRecipeTrainer
from nnunet_dyntransnet.trainers.refusal import TrainingRefused

__all__ = ["BaselineTrainer", "nnUNetTrainerSegResNet", "nnUNetTrainerDynUNet", "nnUNetTrainerUNETR",
           "nnUNetTrainerSwinUNETR", "nnUNetTrainerVNet", "nnUNetTrainerAttentionUNet", "nnUNetTrainerDeepLabV3Plus",
           "nnUNetTrainerUNETR_lr1e4", "nnUNetTrainerSwinUNETR_lr1e4", "BASELINE_TRAINERS"]


class BaselineTrainer(TransformerRecipeTrainer):
    """Trains ``BASELINES[baseline]`` with the shared recipe; subclasses set ``baseline`` and nothing else."""

    baseline: ClassVar[str] = ""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        try:  # on a throw-away copy of the configuration, before nnU-Net's __init__ creates the fold folder
            adapt_configuration(self.baseline, PlansManager(plans).get_configuration(configuration), configuration)
        except BaselineConfigurationError as e:
            raise TrainingRefused(str(e)) from None
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.enable_deep_supervision = False
        planned, used = adapt_configuration(self.baseline, self.configuration_manager, configuration)
        spec = BASELINES[self.baseline]
        if planned != used:
            self.print_to_log_file(f"{spec.network} needs a patch divisible by {list(spec.multiple(self.configuration_manager))}:"
                                   f" patch {planned} -> {used} (training and prediction)")

    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager, num_input_channels: int,
                                   num_output_channels: int, enable_deep_supervision: bool = True) -> nn.Module:
        return build_baseline(cls.baseline, configuration_manager, num_input_channels, num_output_channels)

    def set_deep_supervision_enabled(self, enabled: bool) -> None:
        pass  # one output: there is nothing to switch


class nnUNetTrainerSegResNet(BaselineTrainer):
    baseline = "SegResNet"


class nnUNetTrainerDynUNet(BaselineTrainer):
    baseline = "DynUNet"


class nnUNetTrainerUNETR(BaselineTrainer):
    baseline = "UNETR"


class nnUNetTrainerSwinUNETR(BaselineTrainer):
    baseline = "SwinUNETR"


class nnUNetTrainerVNet(BaselineTrainer):
    baseline = "VNet"


class nnUNetTrainerAttentionUNet(BaselineTrainer):
    baseline = "AttentionUNet"


class nnUNetTrainerDeepLabV3Plus(BaselineTrainer):
    baseline = "DeepLabV3Plus"


class _Lr1e4:
    """AdamW at lr 1e-4 instead of 3e-4 (the rest of the shared recipe unchanged)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.initial_lr = 1e-4


class nnUNetTrainerUNETR_lr1e4(_Lr1e4, nnUNetTrainerUNETR):
    pass


class nnUNetTrainerSwinUNETR_lr1e4(_Lr1e4, nnUNetTrainerSwinUNETR):
    pass


# one trainer per entry of BASELINES, in the table's order
BASELINE_TRAINERS = (nnUNetTrainerSegResNet, nnUNetTrainerDynUNet, nnUNetTrainerUNETR, nnUNetTrainerSwinUNETR,
                     nnUNetTrainerVNet, nnUNetTrainerAttentionUNet, nnUNetTrainerDeepLabV3Plus)
