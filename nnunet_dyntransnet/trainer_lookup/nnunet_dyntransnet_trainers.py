"""Re-exports the DynTransNet trainers for nnU-Net's trainer lookup (imported by nnU-Net, not by users)."""
from nnunet_dyntransnet.trainers import *  # noqa: F401,F403
from nnunet_dyntransnet.trainers import __all__  # noqa: F401
