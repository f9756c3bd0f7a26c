"""nnU-Net trainers for DynTransNet and the paper's baselines (installed as ``nnunet_dyntransnet.trainers``).

nnU-Net finds them by name through ``nnUNet_extTrainer``, which the install's ``.pth``
hook points at :mod:`nnunet_dyntransnet.trainer_lookup` (docs/install.md).
"""
from nnunet_dyntransnet.trainers.ablations import *  # noqa: F401,F403 - one trainer per ablation row
from nnunet_dyntransnet.trainers.ablations import ABLATION_TRAINERS, __all__ as _ablations
from nnunet_dyntransnet.trainers.baselines import *  # noqa: F401,F403 - one trainer per baseline network
from nnunet_dyntransnet.trainers.baselines import BASELINE_TRAINERS, __all__ as _baselines
from nnunet_dyntransnet.trainers.budget import nnUNetTrainer_WallClock
from nnunet_dyntransnet.trainers.demo import (nnUNetTrainerDynTransNetDemoCPU, nnUNetTrainerDynTransNetDemoCPU_Baseline,
                                              nnUNetTrainerDynTransNetDemoGPU)
from nnunet_dyntransnet.trainers.dyntransnet import (nnUNetTrainerDynTransNet, nnUNetTrainerDynTransNet_AdamW,
                                                     nnUNetTrainerDynTransNet_Checkpointed,
                                                     nnUNetTrainerDynTransNet_PerPart,
                                                     nnUNetTrainerDynTransNet_SelectiveCheckpointed,
                                                     nnUNetTrainerDynTransNet_Warmup)
from nnunet_dyntransnet.trainers.no_mirroring import *  # noqa: F401,F403 - the comparison's four, without mirroring
from nnunet_dyntransnet.trainers.no_mirroring import __all__ as _no_mirroring
from nnunet_dyntransnet.trainers.paper import nnUNetTrainerDynTransNet_Paper
from nnunet_dyntransnet.trainers.screens import *  # noqa: F401,F403 - the screens' one-change variants
from nnunet_dyntransnet.trainers.screens import __all__ as _screens

__all__ = ["nnUNetTrainerDynTransNet", "nnUNetTrainerDynTransNet_AdamW", "nnUNetTrainerDynTransNet_Checkpointed",
           "nnUNetTrainerDynTransNet_PerPart", "nnUNetTrainerDynTransNet_Warmup",
           "nnUNetTrainerDynTransNet_SelectiveCheckpointed", "nnUNetTrainerDynTransNet_Paper",
           "nnUNetTrainerDynTransNetDemoCPU", "nnUNetTrainerDynTransNetDemoCPU_Baseline",
           "nnUNetTrainerDynTransNetDemoGPU", "nnUNetTrainer_WallClock", *_ablations, *_baselines,
           *[name for name in _no_mirroring if name != "NoMirroring"], *_screens]
