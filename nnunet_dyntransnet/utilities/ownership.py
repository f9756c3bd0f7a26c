"""Who owns a path: the one rule every command that writes, replaces or deletes follows.

A command never writes into, replaces or deletes

- an input it reads, anything an input lies in, or anything that lies in an input;
- the current folder, the home folder, the filesystem root, nnU-Net's three folders
  (``$nnUNet_raw``, ``$nnUNet_preprocessed``, ``$nnUNet_results``, where set), or anything that
  holds one of them;
- anything it did not write itself.

What a command wrote is known file by file. A folder it writes carries a marker,
``.COMMAND`` (``.dyntransnet_report``), that lists every file in it at every depth
(:func:`write_marker`); a single file it writes says so itself (a JSON field) or is vouched for
by its companion (an ONNX model by its sidecar's hash). ``--overwrite`` replaces only that: a
folder whose every file its marker lists, a file that names the command. Without the flag, a
refusal suggests ``--overwrite`` only where the flag would work.

:class:`Claim` holds one command's inputs and names; :meth:`Claim.folder` and :meth:`Claim.file`
apply the rule before any work, so a refused command has written nothing.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Set, Tuple, Type

__all__ = ["Claim", "OwnershipError", "marker_name", "write_marker", "marked_files", "files_under", "places_never_written"]


class OwnershipError(OSError):
    """A command would replace or delete what it does not own; the message names the path and says what to do."""


def marker_name(command: str) -> str:
    """The marker a command leaves in every folder it writes: ``.dyntransnet_report``."""
    return f".{command}"


def files_under(folder: Path) -> Set[str]:
    """Every file (and link) in ``folder`` at any depth, as POSIX paths relative to it; linked folders are not
    entered (they are someone else's tree)."""
    found = set()
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            found.add((rel / name).as_posix())
    return found


def write_marker(folder: Path, command: str, also: Iterable[str] = ()) -> None:
    """Mark ``folder`` as written by ``command``, listing every file it holds now (and ``also``: files a run is
    about to write), which is what ``--overwrite`` may later replace."""
    marker = marker_name(command)
    files = sorted((files_under(folder) | set(also)) - {marker})
    (folder / marker).write_text(json.dumps(
        {"written_by": command, "files": files, "entries": sorted({f.split("/")[0] for f in files}),
         "note": f"{command} --overwrite may replace the files listed here, and nothing else"}, indent=1) + "\n")


def marked_files(folder: Path, command: str) -> Optional[Set[str]]:
    """The files ``command``'s marker in ``folder`` lists, or None if it has no such marker (or one of a version
    that listed only top-level names, which cannot vouch for what lies deeper)."""
    try:
        marker = json.loads((folder / marker_name(command)).read_text())
        if marker.get("written_by") != command:
            return None
        return set(marker["files"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def places_never_written(datasets: Sequence[str] = ()) -> List[Tuple[Path, str]]:
    """(place, what it is) that no output may be or hold: the current, home and root folders, nnU-Net's folders
    (where set) and the named ``datasets`` inside them. Resolved, so a link or ``..`` cannot hide one."""
    places = [(Path.cwd().resolve(), "the current folder"), (Path.home().resolve(), "your home folder"),
              (Path(Path.cwd().anchor).resolve(), "the filesystem root")]
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        if os.environ.get(var):
            root = Path(os.environ[var]).resolve()
            places += [(root, f"${var}")] + [(root / d, f"a dataset in ${var}") for d in datasets]
    return places


def _relation(target: Path, other: Path) -> Optional[str]:
    if target == other:
        return "is"
    if target in other.parents:
        return "holds"
    if other in target.parents:
        return "lies in"
    return None


@dataclass
class Claim:
    """One command's claim on its outputs.

    Attributes:
        command: the console command (``dyntransnet_report``): names its marker and its messages.
        inputs: (path, what it is) the command reads; no output may be, hold, or lie in one.
        option: the command-line option that names the output, for the messages.
        error: the exception the command reports as bad input (exit 2).
        datasets: nnU-Net dataset folder names the command reads, protected inside nnU-Net's folders.

    An output may lie inside an nnU-Net folder (a converter's dataset in ``$nnUNet_raw``), but never be or hold one.
    """

    command: str
    inputs: Sequence[Tuple[Path, str]] = ()
    option: str = "-o"
    error: Type[Exception] = OwnershipError
    datasets: Sequence[str] = ()

    def place(self, target: Path) -> Path:
        """``target`` resolved, refused if it is, holds or lies in an input, or is or holds a protected place."""
        target = Path(target).expanduser().resolve()
        for path, what in self.inputs:
            path = Path(path).expanduser().resolve()
            relation = _relation(target, path)
            if relation:
                raise self.error(f"{self.option} {target} {relation} {path} ({what}); {self.command} never writes "
                                 f"there, with or without --overwrite. Choose a place outside what it reads")
        for path, what in places_never_written(self.datasets):
            relation = _relation(target, path)
            if relation in ("is", "holds"):
                raise self.error(f"{self.option} {target} {relation} {path} ({what}); it is never replaced, with or "
                                 f"without --overwrite. Pass a new folder")
        return target

    def folder(self, out: Path, overwrite: bool, reusable: bool = False,
               owned: Optional[Callable[[Path], Optional[Set[str]]]] = None) -> List[Path]:
        """Check an output folder; returns ``[out]`` when it exists and may be replaced, else ``[]``.

        A missing or empty folder is used. An existing one is replaced (or, with ``reusable``, reused and
        updated: the demo's workspace) only if every file in it at every depth is one this command's marker
        lists, and, unless ``reusable``, only with ``overwrite``.

        Args:
            owned: the files the command wrote into a folder, or None if it did not write it (default: its
                marker; a command may also recognise folders of its older versions).
        """
        out = self.place(out)
        if out.exists() and not out.is_dir():
            raise self.error(f"{self.option} {out} is a file; pass a folder (a new one, or one {self.command} wrote)")
        if not out.exists():
            return []
        present = files_under(out)
        if not present:
            return [out]
        written = (owned or (lambda folder: marked_files(folder, self.command)))(out)
        if written is None:
            raise self.error(f"{self.option} {out} exists and holds files {self.command} did not write (or wrote "
                             f"before it listed its files); it never replaces them, with or without --overwrite. "
                             f"Pass a new folder")
        foreign = sorted(present - written - {marker_name(self.command)})
        if foreign:
            more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            raise self.error(f"{self.option} {out} was written by {self.command} but now also holds "
                             f"{', '.join(foreign[:5])}{more}, which it did not write; move them out first, or pass "
                             f"another folder")
        if not overwrite and not reusable:
            raise self.error(f"{self.option} {out} holds an earlier run's output; pass --overwrite to replace it, or "
                             f"another folder")
        return [out]

    def file(self, path: Path, overwrite: bool, owned: Callable[[Path], bool]) -> bool:
        """Check an output file; returns whether it exists (and may be replaced).

        A missing file is written. An existing one is replaced only if ``owned(path)`` says this command wrote
        it, and only with ``overwrite``; a folder in its place is refused.
        """
        path = self.place(path)
        if path.is_dir():
            raise self.error(f"{self.option} {path} is a folder; name a file")
        if not path.exists() and not path.is_symlink():
            return False
        if path.is_symlink() or not owned(path):
            raise self.error(f"{path} exists and was not written by {self.command}; it is never replaced, with or "
                             f"without --overwrite. Choose another name")
        if not overwrite:
            raise self.error(f"{path} exists: an earlier run's output of {self.command}; pass --overwrite to replace "
                             f"it, or choose another name")
        return True
