"""DynTransNet for nnU-Net v2.

Importing this package is cheap (no torch): the install's ``.pth`` hook imports
:mod:`nnunet_dyntransnet.trainer_search_path` at every interpreter start. The network is
loaded on first use of ``nnunet_dyntransnet.DynTransNet``.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["DynTransNet", "__version__"]


def __getattr__(name: str):
    if name == "DynTransNet":
        from nnunet_dyntransnet.network import DynTransNet

        return DynTransNet
    raise AttributeError(f"module 'nnunet_dyntransnet' has no attribute {name!r}")
