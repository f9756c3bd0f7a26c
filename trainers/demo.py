"""Trainers for ``dyntransnet_demo``: nnUNetTrainerDynTransNet for a few minutes instead of 1000 epochs.

``dyntransnet_demo`` trains them for a time budget (``DYNTRANSNET_TRAIN_MINUTES``, ``budget.py``)
in epochs of ``DYNTRANSNET_DEMO_ITERATIONS`` steps, and they say every 15 s of a long epoch how far it
is and how much of the budget is left. Without a budget they train ``DYNTRANSNET_DEMO_EPOCHS``
(20) epochs. Prediction ignores all three. The CPU variant narrows the network so a 2-core
machine trains it in minutes; the GPU variant keeps the plan's widths.
"""
from __future__ import annotations

import os

import torch

from nnunet_dyntransnet.network import capped_widths
from nnunet_dyntransnet.trainers.ablations import nnUNetTrainerDynTransNet_Baseline
from nnunet_dyntransnet.trainers.dyntransnet import nnUNetTrainerDynTransNet
from nnunet_dyntransnet.trainers.no_mirroring import NoMirroring

__all__ = ["nnUNetTrainerDynTransNetDemoGPU", "nnUNetTrainerDynTransNetDemoCPU", "nnUNetTrainerDynTransNetDemoCPU_Baseline"]


class nnUNetTrainerDynTransNetDemoGPU(NoMirroring, nnUNetTrainerDynTransNet):
    """The real network, trained for the budget (or ``DYNTRANSNET_DEMO_EPOCHS`` epochs) of
    ``DYNTRANSNET_DEMO_ITERATIONS`` (50) steps, with the main trainer's recipe, without mirroring: the phantom's liver
    lies on the patient's right, as in real scans (:class:`~nnunet_dyntransnet.trainers.no_mirroring.NoMirroring`)."""

    PROGRESS_EVERY_S = 15.0  # the budget's progress lines (budget.py), more often: a user watches the demo

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        # under a budget the epoch count is only a cap, which the budget stops long before
        self.num_epochs = int(os.environ.get("DYNTRANSNET_DEMO_EPOCHS", "20" if self.train_minutes is None else "1000"))
        self.num_iterations_per_epoch = int(os.environ.get("DYNTRANSNET_DEMO_ITERATIONS", "50"))
        self.num_val_iterations_per_epoch = 5


class nnUNetTrainerDynTransNetDemoCPU(nnUNetTrainerDynTransNetDemoGPU):
    """As the GPU variant, with widths capped (8, 16, 32, 64, 64, ...), 16 channels per head, 4-token
    windows and global attention from 512 tokens down: a step a 2-core machine takes in well under a second at
    32x64x64, several times faster than with the default 8-token windows."""

    network_options = dict(head_dim=16, window_size=4, max_global_tokens=512)

    @classmethod
    def network_options_for(cls, configuration_manager) -> dict:
        return {**super().network_options_for(configuration_manager),
                "features_per_stage": capped_widths(configuration_manager, 8, 64)}


class nnUNetTrainerDynTransNetDemoCPU_Baseline(nnUNetTrainerDynTransNetDemoCPU):
    """The CPU demo network without D-MSA, FM-M and RM (the paper's Table 3 baseline); the example
    report in docs/report compares the two."""

    network_options = {**nnUNetTrainerDynTransNetDemoCPU.network_options,
                       **nnUNetTrainerDynTransNet_Baseline.network_options}
