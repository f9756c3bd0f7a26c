"""Small trainers for CPU tests: the real trainers, narrow and short.

Tests put this folder on ``nnUNet_extTrainer`` so nnU-Net's commands find these classes.
``DYNTRANSNET_TEST_EPOCHS`` sets the epoch count, so a test can train, then resume with
``--c`` for more epochs.
"""
import os

import torch

from nnunet_dyntransnet.baseline_networks import adapt_configuration
from nnunet_dyntransnet.network import capped_widths
from nnunet_dyntransnet.trainers import nnUNetTrainerDynTransNet, nnUNetTrainerSwinUNETR


class _Short:
    """Mixin: ``DYNTRANSNET_TEST_EPOCHS`` epochs (default 2) of two iterations, one validation iteration;
    ``DYNTRANSNET_TEST_SKIP_VALIDATION=1`` skips the final validation (a test that predicts on its own)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = int(os.environ.get("DYNTRANSNET_TEST_EPOCHS", "2"))
        self.num_iterations_per_epoch = 2
        self.num_val_iterations_per_epoch = 1
        self.warmup_duration_whole_net = 1  # a recipe with a warm-up (the AdamW one) leaves it after one epoch

    def perform_actual_validation(self, save_probabilities: bool = False):
        if os.environ.get("DYNTRANSNET_TEST_SKIP_VALIDATION") == "1":
            self.print_to_log_file("final validation skipped (DYNTRANSNET_TEST_SKIP_VALIDATION)")
            return
        super().perform_actual_validation(save_probabilities)


class nnUNetTrainerDynTransNetTest(_Short, nnUNetTrainerDynTransNet):
    """The plan's stages, strides and kernels, at a width a 2-core CPU trains in seconds."""

    network_options = dict(depths=1, head_dim=4, window_size=4, max_global_tokens=128)

    @classmethod
    def network_options_for(cls, configuration_manager):
        return {**super().network_options_for(configuration_manager),
                "features_per_stage": capped_widths(configuration_manager, 4, 16)}


class nnUNetTrainerSwinUNETRTest(_Short, nnUNetTrainerSwinUNETR):
    """The SwinUNETR baseline trainer (patch adaptation included), with MONAI's narrowest width (12)."""

    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager, num_input_channels,
                                   num_output_channels, enable_deep_supervision=True):
        from monai.networks.nets import SwinUNETR

        adapt_configuration(cls.baseline, configuration_manager)
        return SwinUNETR(in_channels=num_input_channels, out_channels=num_output_channels, feature_size=12,
                         spatial_dims=len(configuration_manager.patch_size))
