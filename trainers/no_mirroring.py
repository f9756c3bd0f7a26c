"""Trainers without mirroring, for data whose left and right differ (nnU-Net's ``nnUNetTrainerNoMirroring`` idea).

In abdominal CT and MRI the liver lies on the patient's right. Mirroring, in training augmentation and at
test time, hides that cue and costs 8 forward passes per patch at inference in 3D; nnU-Net ships
``nnUNetTrainerNoMirroring`` for such data. :class:`NoMirroring` switches both off for any trainer, and
the classes below are the four networks of ``docs/comparison`` with it, so that they are compared under
the same recipe change.
"""
from __future__ import annotations

from nnunet_dyntransnet.trainers.baselines import nnUNetTrainerAttentionUNet, nnUNetTrainerSegResNet
from nnunet_dyntransnet.trainers.budget import nnUNetTrainer_WallClock
from nnunet_dyntransnet.trainers.dyntransnet import nnUNetTrainerDynTransNet

__all__ = ["NoMirroring", "nnUNetTrainer_WallClock_NoMirroring", "nnUNetTrainerDynTransNet_NoMirroring",
           "nnUNetTrainerSegResNet_NoMirroring", "nnUNetTrainerAttentionUNet_NoMirroring"]


class NoMirroring:
    """Mixin (before the trainer): no mirroring augmentation in training, none at test time."""

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        rotation, dummy_2d, initial_patch_size, _ = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        self.inference_allowed_mirroring_axes = None
        return rotation, dummy_2d, initial_patch_size, None


class nnUNetTrainer_WallClock_NoMirroring(NoMirroring, nnUNetTrainer_WallClock):
    """nnU-Net's U-Net and recipe (with the time budget when one is set), without mirroring."""


class nnUNetTrainerDynTransNet_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet):
    """DynTransNet and its recipe, without mirroring."""


class nnUNetTrainerSegResNet_NoMirroring(NoMirroring, nnUNetTrainerSegResNet):
    """MONAI SegResNet under the shared recipe, without mirroring."""


class nnUNetTrainerAttentionUNet_NoMirroring(NoMirroring, nnUNetTrainerAttentionUNet):
    """MONAI Attention U-Net under the shared recipe, without mirroring."""
