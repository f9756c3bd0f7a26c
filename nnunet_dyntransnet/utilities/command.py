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

__all__ = ["run_command", "plain_text"]


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
