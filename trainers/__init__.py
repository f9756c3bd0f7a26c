"""nnU-Net trainers for DynTransNet (installed as ``nnunet_dyntransnet.trainers``).

nnU-Net finds them by name through ``nnUNet_extTrainer``, which the install's ``.pth``
hook points at :mod:`nnunet_dyntransnet.trainer_lookup` (see the README).
"""
from nnunet_dyntransnet.trainers.demo import nnUNetTrainerDynTransNetDemoCPU, nnUNetTrainerDynTransNetDemoGPU
from nnunet_dyntransnet.trainers.dyntransnet import nnUNetTrainerDynTransNet

__all__ = ["nnUNetTrainerDynTransNet", "nnUNetTrainerDynTransNetDemoCPU", "nnUNetTrainerDynTransNetDemoGPU"]
