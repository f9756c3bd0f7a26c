"""``nnUNetTrainerDynTransNet``: nnU-Net's pipeline with DynTransNet and nnU-Net's transformer recipe.

A variant states its network once, as the class attribute ``network_options`` (keyword
arguments of :class:`~nnunet_dyntransnet.network.DynTransNet`); ``build_network_architecture``
reads it. It is a classmethod so that it can: nnU-Net calls it on the class at inference
(``trainer_class.build_network_architecture(plans_manager, configuration_manager, ...)``),
with the same arguments as the static method of nnU-Net's own trainers. nnU-Net also writes
the attribute into each fold's ``debug.json``, where ``dyntransnet_report`` reads it.

On CUDA, ``initialize`` decides whether the plan's patch and batch fit the GPU and switches
activation checkpointing on if they fit only with it (``gpu_fit``; ``DYNTRANSNET_CHECKPOINTING``
overrides), and stops before training if they do not fit at all.
"""
from __future__ import annotations

from typing import Any, ClassVar, Dict

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from nnunet_dyntransnet.training.gpu_fit import (CHECKPOINTING_ENV, DoesNotFitError, checkpointing_mode, fit_to_gpu,
                                        free_gpu_bytes)
from nnunet_dyntransnet.network import DynTransNet
from nnunet_dyntransnet.trainers.recipe import TransformerRecipeTrainer
from nnunet_dyntransnet.trainers.refusal import TrainingRefused

__all__ = ["FitsTheGPU", "nnUNetTrainerDynTransNet", "nnUNetTrainerDynTransNet_Checkpointed",
           "nnUNetTrainerDynTransNet_SelectiveCheckpointed"]


class FitsTheGPU:
    """Mixin for a trainer that builds DynTransNet: on CUDA, ``initialize`` switches activation checkpointing on
    when the plan's patch and batch fit the GPU only with it, and stops when they do not fit at all (``gpu_fit``)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        try:  # before nnU-Net's __init__ creates the fold folder
            self.checkpointing_mode = checkpointing_mode()
        except ValueError as e:
            raise TrainingRefused(str(e)) from None
        super().__init__(plans, configuration, fold, dataset_json, device)

    def environment_recipe(self) -> Dict[str, Any]:
        return {**super().environment_recipe(), "checkpointing_mode": self.checkpointing_mode}

    def initialize(self) -> None:
        super().initialize()
        if self.device.type == "cuda":
            self.fit_to_gpu(free_gpu_bytes(self.device))
        elif self.checkpointing_mode != "auto":  # no free-memory decision off CUDA: the user's word holds
            self._network_module().set_activation_checkpointing(self.checkpointing_mode == "on")
            self.print_to_log_file(f"activation checkpointing {self.checkpointing_mode} ({CHECKPOINTING_ENV}="
                                   f"{self.checkpointing_mode}; on {self.device.type} it is not decided from free memory)")

    def _network_module(self):
        network = self.network.module if isinstance(self.network, DDP) else self.network
        return getattr(network, "_orig_mod", network)  # torch.compile's wrapper compiles at the first step

    def fit_to_gpu(self, free_bytes: int) -> None:
        """Activation checkpointing on when the training would not fit ``free_bytes`` without it (``gpu_fit``);
        stops with a message naming the planner when it would not fit even with it."""
        network = self._network_module()
        dataset_id = self.plans_manager.dataset_name.split("_")[0].replace("Dataset", "")
        try:
            decision = fit_to_gpu(network, self.batch_size, free_bytes, dataset=dataset_id, mode=self.checkpointing_mode,
                                  class_default=type(self).network_options.get("activation_checkpointing", False))
        except DoesNotFitError as e:
            self.print_to_log_file(f"stopped before training: {e}")
            raise
        self.print_to_log_file(decision.message)


class nnUNetTrainerDynTransNet(FitsTheGPU, TransformerRecipeTrainer):
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


class nnUNetTrainerDynTransNet_SelectiveCheckpointed(nnUNetTrainerDynTransNet):
    """The same network and recipe with selective activation checkpointing in every transformer block
    (``nnunet_dyntransnet.network.checkpointing``): the cheap operations are recomputed in backward, the matmuls' and
    attention's outputs kept; the blocks keep about half, for a few percent of time (README). The fit-to-GPU
    decision can still add full checkpointing at the highest resolution."""

    network_options = dict(selective_checkpointing=True)
