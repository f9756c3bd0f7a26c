"""``nnUNetTrainerDynTransNet``: nnU-Net's pipeline with DynTransNet and nnU-Net's transformer recipe."""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from typing import Iterator, Union

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.training.nnUNetTrainer.primus.primus_trainers import AbstractPrimus
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import nn

from nnunet_dyntransnet.network import DynTransNet

__all__ = ["nnUNetTrainerDynTransNet", "nnUNetTrainerDynTransNet_Checkpointed"]


class nnUNetTrainerDynTransNet(AbstractPrimus):
    """DynTransNet built from the plan, trained with nnU-Net's own transformer (Primus) recipe.

    The recipe comes from ``AbstractPrimus``: AdamW (lr 3e-4, weight decay 5e-2, betas
    0.9/0.98), 50 epochs of linear warm-up, then polynomial decay over nnU-Net's 1000 epochs,
    gradient clipping at norm 1. Unlike Primus, DynTransNet has a U-Net decoder with a head
    per level, so deep supervision stays on.
    """

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.enable_deep_supervision = True

    @staticmethod
    def build_network_architecture(plans_manager: PlansManager,
                                   configuration_manager: ConfigurationManager,
                                   num_input_channels: int,
                                   num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        return DynTransNet.from_plan(configuration_manager, num_input_channels, num_output_channels,
                                    enable_deep_supervision)

    def set_deep_supervision_enabled(self, enabled: bool) -> None:
        # AbstractPrimus turns this into a no-op; DynTransNet's decoder has the switch nnU-Net expects.
        nnUNetTrainer.set_deep_supervision_enabled(self, enabled)

    def load_checkpoint(self, filename_or_checkpoint: Union[dict, str]) -> None:
        # nnUNetTrainer_warmup.load_checkpoint (nnunetv2 2.8.1) calls torch.load without weights_only,
        # which defaults to True since torch 2.6 and rejects the numpy scalars in nnU-Net's own
        # checkpoints, so `nnUNetv2_train ... --c` fails. nnUNetTrainer.load_checkpoint loads the same
        # files with weights_only=False; this restores that behaviour for the warm-up trainer.
        with _full_checkpoint_loading():
            super().load_checkpoint(filename_or_checkpoint)


@contextmanager
def _full_checkpoint_loading() -> Iterator[None]:
    """Let ``torch.load`` calls without ``weights_only`` unpickle full nnU-Net checkpoints, as nnU-Net does.

    A user who forces weights-only loading (``TORCH_FORCE_WEIGHTS_ONLY_LOAD``) keeps it.
    """
    key = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
    if os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD"):
        yield
        return
    previous = os.environ.get(key)
    os.environ[key] = "1"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD.*")
            yield
    finally:
        if previous is None:
            del os.environ[key]
        else:
            os.environ[key] = previous


class nnUNetTrainerDynTransNet_Checkpointed(nnUNetTrainerDynTransNet):
    """The same network and recipe with activation checkpointing at the highest resolution (the first
    transformer stage and the full-resolution decoder level): about half the training activations,
    for recomputing those parts in backward (measurements in the README)."""

    @staticmethod
    def build_network_architecture(plans_manager: PlansManager, configuration_manager: ConfigurationManager,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        return DynTransNet.from_plan(configuration_manager, num_input_channels, num_output_channels,
                                     enable_deep_supervision, activation_checkpointing=True)
