"""Variants that the screens of ``docs/comparison/screens`` train: one change each against ``nnUNetTrainerDynTransNet``.

Every variant trains without mirroring, as the comparison's four networks do (``no_mirroring.py``), and keeps
the rest of the main trainer: a screen row differs from the default row in the one thing its name says.

- ``_SGD``: nnU-Net's own recipe (SGD, lr 1e-2, Nesterov momentum 0.99, polynomial decay, no warm-up, gradient
  clipping at 12) instead of the transformer recipe (AdamW 3e-4 with warm-up).
- ``_Conv2``: the two highest-resolution stages convolutional (``conv_stages=2``: the stem and stage 1 are nnU-Net's
  U-Net stages), D-MSA from stage 2 on.
"""
from __future__ import annotations

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_dyntransnet.trainers.budget import nnUNetTrainer_WallClock
from nnunet_dyntransnet.trainers.dyntransnet import BuildsDynTransNet, nnUNetTrainerDynTransNet
from nnunet_dyntransnet.trainers.no_mirroring import NoMirroring

__all__ = ["nnUNetTrainerDynTransNet_SGD", "nnUNetTrainerDynTransNet_SGD_NoMirroring",
           "nnUNetTrainerDynTransNet_Conv2_NoMirroring"]


class nnUNetTrainerDynTransNet_SGD(BuildsDynTransNet, nnUNetTrainer_WallClock):
    """DynTransNet with nnU-Net's own recipe, the U-Net's (SGD 1e-2, poly, deep supervision), instead of the
    transformer recipe."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.enable_deep_supervision = True

    def set_deep_supervision_enabled(self, enabled: bool) -> None:
        nnUNetTrainer.set_deep_supervision_enabled(self, enabled)


class nnUNetTrainerDynTransNet_SGD_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet_SGD):
    """The screen's row: DynTransNet, nnU-Net's SGD recipe, no mirroring."""


class nnUNetTrainerDynTransNet_Conv2_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet):
    """The screen's row: DynTransNet with ``conv_stages=2``, the transformer recipe, no mirroring."""

    network_options = dict(conv_stages=2)
