"""Make nnU-Net find the DynTransNet trainers without any set-up by the user.

nnU-Net 2.8 looks for trainers it does not ship in the folders listed in the environment
variable ``nnUNet_extTrainer`` (``os.pathsep``-separated). The install adds a ``.pth`` file
to site-packages that calls :func:`register` at every interpreter start, which appends
:func:`trainer_search_path` to that variable (keeping whatever the user put there first).
This module must stay cheap to import: no torch, no nnU-Net.
"""
from __future__ import annotations

import os
from typing import MutableMapping, Optional

__all__ = ["ENV_VAR", "trainer_search_path", "register", "find_trainer_class"]

ENV_VAR = "nnUNet_extTrainer"


def trainer_search_path() -> str:
    """Absolute path of :mod:`nnunet_dyntransnet.trainer_lookup`."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "trainer_lookup")


def register(environ: Optional[MutableMapping[str, str]] = None) -> str:
    """Append :func:`trainer_search_path` to ``nnUNet_extTrainer`` unless it is already listed.

    Returns:
        The new value of the variable.
    """
    environ = os.environ if environ is None else environ
    path = trainer_search_path()
    entries = [p for p in environ.get(ENV_VAR, "").split(os.pathsep) if p]
    if path not in entries:
        entries.append(path)
    environ[ENV_VAR] = os.pathsep.join(entries)
    return environ[ENV_VAR]


def find_trainer_class(name: str):
    """The class nnU-Net's own lookup (``nnUNetv2_train -tr NAME``) finds for ``name``, or None if it finds none.

    Imports nnU-Net (and torch) only when called; this plugin's folder is registered first.
    """
    import contextlib
    import io

    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    register()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the lookup narrates every folder it searches
            return recursive_find_trainer_class_by_name(name)
    except (RuntimeError, AssertionError):
        return None


if __name__ == "__main__":
    # `python -m nnunet_dyntransnet.trainer_search_path` prints the folder, for set-ups that
    # skip .pth files (python -S, some frozen environments): export nnUNet_extTrainer=$(...)
    print(trainer_search_path())
