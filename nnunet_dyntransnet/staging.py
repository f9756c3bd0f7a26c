"""Write a folder completely or not at all: build it beside its target, rename it into place at the end."""
from __future__ import annotations

import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

__all__ = ["staged_folder"]


@contextmanager
def staged_folder(target: Path, replace: Sequence[Path] = (), tag: str = "staging") -> Iterator[Path]:
    """Yield a new hidden folder beside ``target`` (``.NAME.TAG-xxxxxxxx``).

    If the block completes, the folders in ``replace`` are removed and the staging folder is
    renamed to ``target``; if it raises, the staging folder is removed and nothing else is
    touched, so what the user had stays as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{tag}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        for old in replace:
            shutil.rmtree(old)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
