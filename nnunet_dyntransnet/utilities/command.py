"""How every writing command of the plugin ends: one line and exit status for bad input, for an interrupt, and
for success.

Bad input exits 2 with ``PROG: error: MESSAGE`` (argparse's form); Ctrl-C exits 130 and SIGTERM 143 (the
shell's statuses), saying that nothing was written, which :mod:`~nnunet_dyntransnet.utilities.staging`
guarantees; success prints what was written and exits 0.
"""
from __future__ import annotations

import re
import sys
from typing import Callable, Tuple, Type

from nnunet_dyntransnet.utilities.staging import exit_code_of

__all__ = ["run_command", "plain_text", "CommandStop", "run_steps"]


def run_command(prog: str, work: Callable[[], str], errors: Tuple[Type[BaseException], ...],
                interrupted: str = "nothing was written") -> int:
    """Run ``work`` (it returns the line to print on success) and turn ``errors`` and interrupts into exit statuses.

    Args:
        prog: the command's name, first on every line it prints to stderr.
        work: does the command's job; raises one of ``errors`` for bad input.
        errors: the exceptions that carry a message for the user (no traceback).
        interrupted: what the user is told was left behind after Ctrl-C or SIGTERM.
    """
    try:
        done = work()
    except errors as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (staging raises Terminated, a KeyboardInterrupt)
        print(f"{prog}: {str(e) or 'interrupted (Ctrl-C)'}; {interrupted}", file=sys.stderr)
        return exit_code_of(e)
    print(done)
    return 0


def plain_text(docstring_part: str) -> str:
    """A docstring's reST as a terminal shows it in ``--help``: ``code`` and :role:`target` become plain words."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], docstring_part)
    return text.replace("``", "")


class CommandStop(Exception):
    """Ends a command early from any of its steps: ``message`` (if any) goes to stderr after the command's name,
    ``code`` is the exit status (2: bad input, refused before any work; 1: a step failed)."""

    def __init__(self, message: str = "", code: int = 2) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def run_steps(prog: str, steps: Callable[[], int]) -> int:
    """``steps()``'s exit status, or the status of the :class:`CommandStop` it raised, after printing its message."""
    try:
        return steps()
    except CommandStop as stop:
        if stop.message:
            print(f"{prog}: {stop.message}", file=sys.stderr)
        return stop.code

