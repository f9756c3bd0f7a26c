"""Write a folder completely or not at all, and replace an old one without ever losing it.

Every command that writes a dataset or a report builds it in a hidden folder beside its
target and renames it into place at the end (:func:`staged_folder`). Replacing is done in
three steps, each undoable: move the old folder aside, move the new one in, then delete the
old one; a failure before the last step puts the old folder back.

A job killed by SIGTERM (what SLURM sends at a time limit or on ``scancel``) or SIGINT
cleans up like any other failure: while a staged folder is open, SIGTERM raises
:class:`Terminated` in the main thread. Hidden folders that a run killed by SIGKILL or a
power cut left behind are named after their process (``.NAME.TAG-PID@HOST-xxxxxxxx``); the
next run beside them removes those whose process is gone, and says so.

What a command may replace at all is decided before, by :mod:`~nnunet_dyntransnet.utilities.ownership`.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sys
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

__all__ = ["StagingError", "Terminated", "staged_folder", "remove_stale_staging", "check_removable", "exit_code_of",
           "staging_name", "pid_alive", "sigterm_raises"]

_REPLACED = "replaced"  # tag of an old folder moved aside during a replace


class StagingError(OSError):
    """A folder could not be written or replaced; the message names it and says what to do."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; raised like Ctrl-C so that ``finally`` blocks clean up, exit status 143."""


def exit_code_of(interrupt: KeyboardInterrupt) -> int:
    """The shell's exit status for a run stopped by SIGTERM (143) or Ctrl-C (130)."""
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


def _host() -> str:
    return socket.gethostname().split(".")[0] or "localhost"


def staging_name(target: Path, tag: str) -> str:
    """``.NAME.TAG-PID@HOST-xxxxxxxx``: a hidden sibling of ``target`` that :func:`remove_stale_staging` can
    recognise and remove once this process is gone."""
    return f".{target.name}.{tag}-{os.getpid()}@{_host()}-{uuid.uuid4().hex[:8]}"


def pid_alive(pid: int) -> bool:
    """Whether a process of this id exists on this host (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _leftovers(target: Path, tag: str) -> List[Tuple[Path, str]]:
    """Hidden folders beside ``target`` that a dead process of this host left: (path, its tag)."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.({re.escape(tag)}|{_REPLACED})-"
                         rf"(?:(\d+)@(.+)-)?[0-9a-f]{{8}}")
    found = []
    if not target.parent.is_dir():
        return found
    for p in target.parent.iterdir():
        m = pattern.fullmatch(p.name)
        if not m:
            continue
        pid, host = m.group(2), m.group(3)
        # a name without a pid is an old-style leftover (no process can still be writing it)
        if pid is None or (host == _host() and not pid_alive(int(pid))):
            found.append((p, m.group(1)))
    return found


def remove_stale_staging(target: Path, tag: str) -> None:
    """Remove what interrupted earlier runs left beside ``target``, printing each folder.

    A half-written staging folder is deleted. An old folder that was moved aside during a
    replace is deleted if ``target`` exists (the replace had finished), else moved back.
    """
    for path, kind in _leftovers(target, tag):
        if kind == _REPLACED and not target.exists():
            path.rename(target)
            print(f"restored {target} from {path.name}, which an interrupted replace left behind", file=sys.stderr)
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        what = "an interrupted run's unfinished output" if kind == tag else "the folder an interrupted replace had retired"
        print(f"removed {path} ({what})", file=sys.stderr)


def check_removable(folder: Path) -> None:
    """Raise StagingError if some file or folder inside ``folder`` could not be deleted.

    Deleting a file needs write and search permission on the folder that holds it; checking
    every folder first means a replace never starts on a tree it cannot finish deleting.
    """
    # os.walk does not descend into linked folders, and rmtree deletes the link, not what it points to
    for root, _, _ in os.walk(folder):
        if not os.access(root, os.W_OK | os.X_OK):
            raise StagingError(f"{root} is not writable, so {folder} could not be deleted after the replace; "
                               f"make it writable (chmod -R u+w {folder}) or choose another target")


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """While open, SIGTERM raises Terminated (main thread only: elsewhere Python cannot set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _make_dir(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StagingError(f"{path} is a file, not a folder; {what}") from None
    except OSError as e:
        raise StagingError(f"cannot create {path} ({e.strerror}); {what}") from None


def _swap_in(staging: Path, target: Path, replace: Sequence[Path]) -> None:
    """Old folders aside, new one in; undone if any rename fails. Then the old ones are deleted."""
    aside: List[Tuple[Path, Path]] = []
    try:
        for old in replace:
            retired = old.parent / staging_name(old, _REPLACED)
            old.rename(retired)
            aside.append((old, retired))
        staging.rename(target)
    except BaseException as e:
        for old, retired in reversed(aside):
            retired.rename(old)
        if isinstance(e, OSError):
            raise StagingError(f"could not move the new {target.name} into place ({e.strerror or e}); "
                               f"{'the old one is back as it was' if aside else 'nothing was changed'}") from None
        raise
    for old, retired in aside:
        try:
            shutil.rmtree(retired)
        except OSError as e:
            print(f"warning: the replaced {old} is now at {retired} but could not be deleted ({e}); delete it by hand",
                  file=sys.stderr)


@contextmanager
def staged_folder(target: Path, replace: Sequence[Path] = (), tag: str = "staging",
                  parent_hint: Optional[str] = None) -> Iterator[Path]:
    """Yield a new hidden folder beside ``target`` (``.NAME.TAG-PID@HOST-xxxxxxxx``).

    If the block completes, the staging folder becomes ``target`` and the folders in
    ``replace`` (checked to be deletable before anything moves) are retired safely; if it
    raises, is interrupted (Ctrl-C) or terminated (SIGTERM), the staging folder is removed
    and nothing else is touched, so what the user had stays as it was.

    Args:
        target: the folder to create; must not exist unless it is in ``replace``.
        replace: existing folders the new one replaces (usually ``[target]``).
        tag: names the staging folder (``converting``, ``report``).
        parent_hint: what to tell the user when ``target.parent`` cannot be created.

    Raises:
        StagingError: the parent cannot be created or written, or an old folder cannot be deleted.
    """
    _make_dir(target.parent, parent_hint or "choose a folder you can write to")
    remove_stale_staging(target, tag)
    if target.exists() and target not in replace:
        raise StagingError(f"{target} exists; it is replaced only when asked (--overwrite)")
    for old in replace:
        check_removable(old)
    staging = target.parent / staging_name(target, tag)
    try:
        staging.mkdir()
    except OSError as e:
        raise StagingError(f"cannot write in {target.parent} ({e.strerror}); "
                           f"{parent_hint or 'choose a folder you can write to'}") from None
    try:
        with sigterm_raises():
            yield staging
            _swap_in(staging, target, replace)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
