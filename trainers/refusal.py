"""A configuration a trainer cannot train, refused before nnU-Net creates the fold folder.

nnU-Net's trainer ``__init__`` creates ``fold_N`` and writes a training log, and an exception
raised after it prints a traceback. A trainer of this plugin checks what it can check (its
environment variables, the plan's dimensionality) before calling nnU-Net's ``__init__`` and
raises :class:`TrainingRefused`: a ``SystemExit``, so ``nnUNetv2_train`` prints the message
alone and exits 1, and nothing is written. ``--c`` is checked the same way (:class:`ChecksResume`).
"""
from __future__ import annotations

from typing import Any, Dict

import torch

__all__ = ["TrainingRefused", "ChecksResume"]


class TrainingRefused(SystemExit):
    """This trainer cannot train what was asked; the message says what was given and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(f"nnUNetv2_train: {message}")
        self.message = message


class ChecksResume:
    """Mixin: on ``--c``, the checkpoint is read once and every mixin's :meth:`check_resumable` sees it (the budget's,
    the network's), before nnU-Net's own loading. A check refuses with :class:`TrainingRefused`."""

    def load_checkpoint(self, filename_or_checkpoint) -> None:
        if isinstance(filename_or_checkpoint, str):
            self.check_resumable(torch.load(filename_or_checkpoint, map_location="cpu", weights_only=False),
                                 filename_or_checkpoint)
        super().load_checkpoint(filename_or_checkpoint)

    def check_resumable(self, checkpoint: Dict[str, Any], path: str) -> None:
        """Raise :class:`TrainingRefused` if this trainer cannot continue ``checkpoint`` (read from ``path``)."""
