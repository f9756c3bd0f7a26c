"""Small trainers for CPU tests: the real DynTransNet trainer, narrow and short.

Tests put this folder on ``nnUNet_extTrainer`` so nnU-Net's commands find these classes.
``DYNTRANSNET_TEST_EPOCHS`` sets the epoch count, so a test can train, then resume with
``--c`` for more epochs.
"""
import os

import torch

from nnunet_dyntransnet.network import DynTransNet
from nnunet_dyntransnet import trainers
from nnunet_dyntransnet.trainers import nnUNetTrainerDynTransNet


class nnUNetTrainerDynTransNetTest(nnUNetTrainerDynTransNet):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = int(os.environ.get("DYNTRANSNET_TEST_EPOCHS", "2"))
        self.num_iterations_per_epoch = 2
        self.num_val_iterations_per_epoch = 1
        self.warmup_duration_whole_net = 1  # so a 2-epoch run crosses from warm-up to the poly schedule

    @staticmethod
    def build_network_architecture(plans_manager, configuration_manager, num_input_channels,
                                   num_output_channels, enable_deep_supervision=True):
        # the plan's stages, strides and kernels, at a width a 2-core CPU trains in seconds
        features = [min(4 * 2 ** i, 16) for i in range(len(configuration_manager.network_arch_init_kwargs["features_per_stage"]))]
        return DynTransNet.from_plan(configuration_manager, num_input_channels, num_output_channels,
                                     enable_deep_supervision, features_per_stage=features, depths=1,
                                     head_dim=4, window_size=4, max_global_tokens=128)


class _ShortSchedule:
    """Mixin: one epoch of two iterations, whatever the trainer it is mixed into."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 1
        self.num_iterations_per_epoch = 2
        self.num_val_iterations_per_epoch = 1


def _short(cls):
    name = f"{cls.__name__}Short"
    return type(name, (_ShortSchedule, cls), {"__module__": __name__, "__qualname__": name})


# the paper-recipe and ablation trainers with their real networks, on a one-epoch schedule
SHORT_TRAINERS = [_short(getattr(trainers, n)) for n in trainers.__all__
                  if n.startswith("nnUNetTrainerDynTransNet_")]
globals().update({cls.__name__: cls for cls in SHORT_TRAINERS})
