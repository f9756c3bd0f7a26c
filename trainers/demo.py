"""Trainers for ``dyntransnet_demo``: nnUNetTrainerDynTransNet for a few minutes instead of 1000 epochs.

``dyntransnet_demo`` trains them for a time budget (``DYNTRANSNET_TRAIN_MINUTES``, ``budget.py``)
in epochs of ``DYNTRANSNET_DEMO_ITERATIONS`` steps, and they say every 15 s of a long epoch how far it
is and how much of the budget is left. Without a budget they train ``DYNTRANSNET_DEMO_EPOCHS``
(20) epochs. Prediction ignores all three. The CPU variant narrows the network so a 2-core
machine trains it in minutes; the GPU variant keeps the plan's widths.
"""
from __future__ import annotations

import os
from typing import Optional

import torch

from nnunet_dyntransnet.network import capped_widths
from nnunet_dyntransnet.trainers.ablations import nnUNetTrainerDynTransNet_Baseline
from nnunet_dyntransnet.trainers.dyntransnet import nnUNetTrainerDynTransNet
from nnunet_dyntransnet.trainers.no_mirroring import NoMirroring

__all__ = ["nnUNetTrainerDynTransNetDemoGPU", "nnUNetTrainerDynTransNetDemoCPU", "nnUNetTrainerDynTransNetDemoCPU_Baseline",
           "QUIET_STEP_ENV", "ENOUGH", "slow_machine_warning"]

# the seconds a step takes on a quiet machine, which dyntransnet_demo sets on a CPU (the steps its budget plans for)
QUIET_STEP_ENV = "DYNTRANSNET_DEMO_QUIET_STEP_S"
ENOUGH = 0.5  # fewer than this share of the planned steps: the result is not representative


def slow_machine_warning(first_epoch_s: float, steps: int, minutes: float, quiet_step_s: float) -> Optional[str]:
    """A warning, after the first epoch, when at its pace the budget trains fewer than :data:`ENOUGH` of the steps a
    quiet machine trains in it, with the ``--minutes`` that would train them; None when the pace is fine."""
    step_s = first_epoch_s / max(1, steps)
    planned, expected = minutes * 60 / quiet_step_s, minutes * 60 / step_s
    if expected >= ENOUGH * planned:
        return None
    return (f"WARNING: the first epoch took {step_s:.2f} s a step, {step_s / quiet_step_s:.1f}x the {quiet_step_s:g} s "
            f"of a quiet 2-core machine: the {minutes:g} minutes will train about {expected:.0f} of the {planned:.0f} "
            f"planned steps, too few for representative scores. Stop now (Ctrl-C) and run dyntransnet_demo again with "
            f"--minutes {minutes * step_s / quiet_step_s:.0f}, or on a quieter machine; or let it finish")


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

    def on_epoch_end(self) -> None:
        first = self.current_epoch == 0
        try:
            super().on_epoch_end()
        finally:  # also when the budget ends the training after this epoch: the warning says why it was short
            if first and os.environ.get(QUIET_STEP_ENV) and self.train_minutes is not None and self._epoch_durations():
                warning = slow_machine_warning(self._epoch_durations()[0], len(getattr(self, "_epoch_outputs", [])),
                                               self.train_minutes, float(os.environ[QUIET_STEP_ENV]))
                if warning:
                    self.print_to_log_file(warning)


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
