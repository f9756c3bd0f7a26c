"""``nnUNetTrainerDynTransNet_Paper``: the paper's Table 1 recipe on nnU-Net's pipeline.

As the paper states it: one output head (deep supervision off), Adam without weight decay,
lr 1e-4, Dice loss, batch size 2, 300 epochs, where an epoch is one pass over the fold's
training cases (iterations per epoch = ceil(training cases / 2)). What nnU-Net adds on top
(augmentation, foreground oversampling, AMP, gradient clipping, a polynomial lr schedule) is
listed in the README beside the paper's value.
"""
from __future__ import annotations

import math

import torch
from nnunetv2.training.nnUNetTrainer.variants.loss.nnUNetTrainerDiceLoss import nnUNetTrainerDiceLoss
from nnunetv2.training.nnUNetTrainer.variants.optimizer.nnUNetTrainerAdam import nnUNetTrainerVanillaAdam

from nnunet_dyntransnet.trainers.dyntransnet import BuildsDynTransNet

__all__ = ["nnUNetTrainerDynTransNet_Paper"]

PAPER_BATCH_SIZE = 2
PAPER_EPOCHS = 300
PAPER_LR = 1e-4


class nnUNetTrainerDynTransNet_Paper(BuildsDynTransNet, nnUNetTrainerDiceLoss, nnUNetTrainerVanillaAdam):
    """DynTransNet with Dice loss (nnUNetTrainerDiceLoss) and Adam (nnUNetTrainerVanillaAdam), Table 1's values;
    the network is the main trainer's (the paper states no architecture hyperparameter)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.initial_lr = PAPER_LR
        self.weight_decay = 0.0  # nnUNetTrainerVanillaAdam passes nnU-Net's 3e-5; the paper names none
        self.num_epochs = PAPER_EPOCHS
        self.enable_deep_supervision = False  # the paper's network has one head

    def _set_batch_size_and_oversample(self):
        # the paper's batch size, whatever the plan says; nnU-Net then splits it over DDP workers
        self.configuration_manager.configuration["batch_size"] = PAPER_BATCH_SIZE
        super()._set_batch_size_and_oversample()

    def on_train_start(self):
        super().on_train_start()  # initializes the trainer, so the split is known
        # one epoch = one pass over this fold's training cases at the paper's batch size (over all GPUs)
        tr_keys, _ = self.do_split()
        self.num_iterations_per_epoch = max(1, math.ceil(len(tr_keys) / PAPER_BATCH_SIZE))
        self.print_to_log_file(f"Paper recipe: {self.num_iterations_per_epoch} iterations per epoch "
                               f"({len(tr_keys)} training cases / batch {PAPER_BATCH_SIZE}), {self.num_epochs} epochs")
