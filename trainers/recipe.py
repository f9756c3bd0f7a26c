"""The training recipe every DynTransNet trainer and every baseline trainer shares.

``TransformerRecipeTrainer`` is nnU-Net's own recipe for transformers, the one its authors
calibrated for Primus inside this pipeline (``AbstractPrimus``): AdamW (lr 3e-4, weight
decay 5e-2, betas 0.9/0.98), 50 epochs of linear warm-up, then polynomial decay over nnU-Net's
1000 epochs, gradient clipping at norm 1, Dice + CE loss, mixed precision, nnU-Net's data
pipeline; with ``DYNTRANSNET_TRAIN_MINUTES`` set, a wall-clock budget instead of the 1000
epochs (``budget.py``). Subclasses choose only the network (``build_network_architecture``)
and whether deep supervision is on.
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from typing import Iterator, Union

from nnunetv2.training.nnUNetTrainer.primus.primus_trainers import AbstractPrimus

from nnunet_dyntransnet.trainers.budget import WallClockBudget

__all__ = ["TransformerRecipeTrainer", "LoadsWarmupCheckpoints"]


class LoadsWarmupCheckpoints:
    """Mixin for a trainer built on nnU-Net's ``nnUNetTrainer_warmup`` (Primus's recipe, SGD with warm-up): its
    ``load_checkpoint`` loads nnU-Net's checkpoints again, so that ``--c`` and prediction work."""

    def load_checkpoint(self, filename_or_checkpoint: Union[dict, str]) -> None:
        # nnUNetTrainer_warmup.load_checkpoint (nnunetv2 2.8.1) calls torch.load without weights_only,
        # which defaults to True since torch 2.6 and rejects the numpy scalars in nnU-Net's own
        # checkpoints, so `nnUNetv2_train ... --c` fails. nnUNetTrainer.load_checkpoint loads the same
        # files with weights_only=False; this restores that behaviour for the warm-up trainer.
        with _full_checkpoint_loading():
            super().load_checkpoint(filename_or_checkpoint)


class TransformerRecipeTrainer(LoadsWarmupCheckpoints, WallClockBudget, AbstractPrimus):
    """nnU-Net's transformer (Primus) recipe; the network is the subclass's. With ``DYNTRANSNET_TRAIN_MINUTES``
    set, it trains for that many minutes instead of 1000 epochs (``budget.py``)."""


@contextmanager
def _full_checkpoint_loading() -> Iterator[None]:
    """Let ``torch.load`` calls without ``weights_only`` unpickle full nnU-Net checkpoints, as nnU-Net does.

    A user who forces weights-only loading (``TORCH_FORCE_WEIGHTS_ONLY_LOAD``) keeps it.
    """
    key = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
    if os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD"):
        yield
        return
    previous = os.environ.get(key)
    os.environ[key] = "1"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD.*")
            yield
    finally:
        if previous is None:
            del os.environ[key]
        else:
            os.environ[key] = previous
