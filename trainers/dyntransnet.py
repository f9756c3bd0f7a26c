"""``nnUNetTrainerDynTransNet``: nnU-Net's pipeline with DynTransNet and nnU-Net's transformer recipe.

A variant states its network once, as the class attribute ``network_options`` (keyword
arguments of :class:`~nnunet_dyntransnet.network.DynTransNet`); ``build_network_architecture``
reads it. It is a classmethod so that it can: nnU-Net calls it on the class at inference
(``trainer_class.build_network_architecture(plans_manager, configuration_manager, ...)``),
with the same arguments as the static method of nnU-Net's own trainers. nnU-Net also writes
the attribute into each fold's ``debug.json``, where ``dyntransnet_report`` reads it.
"""
from __future__ import annotations

from typing import Any, ClassVar, Dict

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import nn

from nnunet_dyntransnet.network import DynTransNet
from nnunet_dyntransnet.trainers.recipe import TransformerRecipeTrainer

__all__ = ["nnUNetTrainerDynTransNet", "nnUNetTrainerDynTransNet_Checkpointed"]


class nnUNetTrainerDynTransNet(TransformerRecipeTrainer):
    """DynTransNet built from the plan, trained with nnU-Net's transformer recipe (see ``recipe.py``).

    Unlike Primus, DynTransNet has a U-Net decoder with a head per level, so deep supervision
    stays on.
    """

    network_options: ClassVar[Dict[str, Any]] = {}

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.enable_deep_supervision = True

    @classmethod
    def build_network_architecture(cls, plans_manager: PlansManager, configuration_manager: ConfigurationManager,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        return DynTransNet.from_plan(configuration_manager, num_input_channels, num_output_channels,
                                     enable_deep_supervision, **cls.network_options)

    def set_deep_supervision_enabled(self, enabled: bool) -> None:
        # AbstractPrimus turns this into a no-op; DynTransNet's decoder has the switch nnU-Net expects.
        nnUNetTrainer.set_deep_supervision_enabled(self, enabled)


class nnUNetTrainerDynTransNet_Checkpointed(nnUNetTrainerDynTransNet):
    """The same network and recipe with activation checkpointing at the highest resolution (the first
    transformer stage and the full-resolution decoder level): about half the training activations,
    for recomputing those parts in backward (measurements in the README)."""

    network_options = dict(activation_checkpointing=True)
