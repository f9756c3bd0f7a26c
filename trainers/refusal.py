"""A configuration a trainer cannot train, refused before nnU-Net creates the fold folder.

nnU-Net's trainer ``__init__`` creates ``fold_N`` and writes a training log, and an exception
raised after it prints a traceback. A trainer of this plugin checks what it can check (its
environment variables, the plan's dimensionality) before calling nnU-Net's ``__init__`` and
raises :class:`TrainingRefused`: a ``SystemExit``, so ``nnUNetv2_train`` prints the message
alone and exits 1, and nothing is written.
"""
from __future__ import annotations

__all__ = ["TrainingRefused"]


class TrainingRefused(SystemExit):
    """This trainer cannot train what was asked; the message says what was given and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(f"nnUNetv2_train: {message}")
        self.message = message
