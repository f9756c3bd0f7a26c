"""Reading an nnU-Net checkpoint file with a message that names it when it cannot be read.

A ``.pth`` cut off while it was written (a run killed during ``torch.save`` before saves were
atomic, a full disk) makes ``torch.load`` raise one of several errors (``EOFError`` for an empty
file, a ``RuntimeError`` from the zip reader, an ``OSError``), none of which names the file.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Dict, Type, Union

__all__ = ["UNREADABLE", "read_checkpoint"]

# what torch.load raises for a truncated or foreign file
UNREADABLE = (EOFError, RuntimeError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError)


def read_checkpoint(path: Union[str, Path], error: Type[BaseException], what_to_do: str) -> Dict[str, Any]:
    """``torch.load(path)`` on the CPU (a full nnU-Net checkpoint, so not weights-only), or ``error`` whose
    message names ``path``, says it is cut off or not a checkpoint, and ends with ``what_to_do``."""
    import torch

    try:
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=False)
    except UNREADABLE as e:
        size = Path(path).stat().st_size if Path(path).is_file() else 0
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise error(f"{path} ({size} bytes) cannot be read as a checkpoint ({reason}): it was cut off while being "
                    f"written (a stopped run, a full disk) or is not one. {what_to_do}") from None
    if not isinstance(checkpoint, dict):
        raise error(f"{path} holds a {type(checkpoint).__name__}, not an nnU-Net checkpoint. {what_to_do}")
    return checkpoint
