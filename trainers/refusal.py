"""A configuration a trainer cannot train, refused before nnU-Net creates the fold folder.

nnU-Net's trainer ``__init__`` creates ``fold_N`` and writes a training log, and an exception
raised after it prints a traceback. A trainer of this plugin checks what it can check (its
environment variables, the plan's dimensionality) before calling nnU-Net's ``__init__`` and
raises :class:`TrainingRefused`: a ``SystemExit``, so ``nnUNetv2_train`` prints the message
alone and exits 1, and nothing is written. ``--c`` is checked the same way (:class:`ChecksResume`), after
nnU-Net's ``__init__`` has started this run's training log: a refusal there removes that log again, so a
refused run leaves no stub ``training_log_*.txt`` in the fold.
"""
from __future__ import annotations

import os
from typing import Any, Dict

from nnunet_dyntransnet.utilities.checkpoint_file import read_checkpoint

__all__ = ["TrainingRefused", "ChecksResume"]


class TrainingRefused(SystemExit):
    """This trainer cannot train what was asked; the message says what was given and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(f"nnUNetv2_train: {message}")
        self.message = message


class ChecksResume:
    """Mixin: on ``--c``, the checkpoint is read once and every mixin's :meth:`check_resumable` sees it (the budget's,
    the network's), before nnU-Net's own loading. A check refuses with :class:`TrainingRefused`."""

    def print_to_log_file(self, *args, **kwargs) -> None:
        if not hasattr(self, "_log_was_there"):  # before this run's first line: was the log another run's?
            log = getattr(self, "log_file", None)
            self._log_was_there = log is None or os.path.exists(log)
        super().print_to_log_file(*args, **kwargs)

    def forget_own_log(self) -> None:
        """Remove the training log this run started (never one that was there before), for a run that is refused."""
        if getattr(self, "_log_was_there", True) is False and os.path.isfile(self.log_file):
            os.remove(self.log_file)

    def load_checkpoint(self, filename_or_checkpoint) -> None:
        if isinstance(filename_or_checkpoint, str):
            try:
                checkpoint = read_checkpoint(
                    filename_or_checkpoint, TrainingRefused,
                    "Move it aside (add .broken to its name) and run the same command again: --c then continues from "
                    "the next checkpoint nnU-Net finds (checkpoint_latest.pth, then checkpoint_best.pth), or starts "
                    "the fold afresh when there is none")
                self.check_resumable(checkpoint, filename_or_checkpoint)
            except TrainingRefused:
                self.forget_own_log()
                raise
        super().load_checkpoint(filename_or_checkpoint)

    def check_resumable(self, checkpoint: Dict[str, Any], path: str) -> None:
        """Raise :class:`TrainingRefused` if this trainer cannot continue ``checkpoint`` (read from ``path``)."""
