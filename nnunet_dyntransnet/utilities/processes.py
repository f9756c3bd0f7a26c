"""One supervisor for every command that starts processes (the demo, the protocol, the benchmark).

A child runs in a process group of its own (with everything it starts: nnU-Net's data-augmentation workers, its
export pool), so that it can be stopped whole. When the command is stopped (Ctrl-C, or SIGTERM, which
:func:`~nnunet_dyntransnet.utilities.staging.sigterm_raises` turns into :class:`Terminated`), the supervisor sends
SIGTERM to the child's group (for Ctrl-C too: SIGINT would make every Python process in it print a
traceback), waits for the group to end (``DYNTRANSNET_STOP_GRACE_S`` seconds, 300 by
default: a training stops cleanly well within that), and only then kills what is left. Its caller then exits 130 or
143 with a line that says what was stopped.

A child in its own group does not receive the terminal's Ctrl-C itself: the supervisor forwards it, so it arrives
once, in order.

A child is started inside :func:`starting`: a Ctrl-C or SIGTERM that lands while ``subprocess.Popen`` creates it
would raise inside Popen, after the fork, and the caller would never get the process it must stop (the child would
run on, orphaned). Inside ``starting`` the signal waits until the caller holds the process.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence

__all__ = ["GRACE_ENV", "start", "starting", "stop", "run", "group_alive"]

GRACE_ENV = "DYNTRANSNET_STOP_GRACE_S"


def _grace() -> float:
    try:
        return max(0.0, float(os.environ.get(GRACE_ENV, "300")))
    except ValueError:
        return 300.0


@contextmanager
def starting() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM for the block and deliver them (to the handlers they had) when it ends.

    Start the child and store it where the stopping code finds it inside the block; a signal that arrived meanwhile
    then raises at the block's end, when the child can be stopped. Outside the main thread (where Python cannot set
    handlers) the block holds nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: List[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():  # None: a handler set outside Python, which Python cannot put back
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        for s in dict.fromkeys(held):
            signal.raise_signal(s)  # its handler runs here (or its default action: the process ends as it would have)


def start(cmd: Sequence[str], env: Optional[Dict[str, str]] = None, **popen: object) -> subprocess.Popen:
    """``cmd`` as the leader of a new process group (its pid is the group's id); call it inside :func:`starting`."""
    # The child writes to the same stdout and stderr: what this process printed before must come out first, and
    # into a pipe or a file Python buffers it (its lines would follow the child's, or be lost with a kill).
    sys.stdout.flush()
    sys.stderr.flush()
    return subprocess.Popen([str(c) for c in cmd], env=env, start_new_session=True, **popen)


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (zombies count until reaped)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(process: subprocess.Popen, signum: int = signal.SIGTERM, grace: Optional[float] = None) -> str:
    """Send ``signum`` to ``process``'s group, wait up to ``grace`` seconds for the whole group to end, then kill
    what is left; returns what happened, for the command's last line."""
    grace = _grace() if grace is None else grace
    name = signal.Signals(signum).name
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        process.wait()
        return "had already ended"
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if process.poll() is not None and not group_alive(process.pid):
            return f"stopped by {name}"
        time.sleep(0.1)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
    return f"did not stop within {grace:g} s of {name} and was killed"


def run(cmd: Sequence[str], env: Optional[Dict[str, str]] = None, stopped: Optional[List[str]] = None,
        **popen: object) -> subprocess.CompletedProcess:
    """Run ``cmd`` to the end under supervision; on Ctrl-C or SIGTERM stop its group (:func:`stop`), note what
    happened in ``stopped`` and raise the interrupt again. ``popen`` as for :class:`subprocess.Popen`
    (``stdout=subprocess.PIPE`` collects the output)."""
    process = None
    try:
        with starting():
            process = start(cmd, env=env, **popen)
        out, err = process.communicate()
    except KeyboardInterrupt:
        if process is None:  # stopped before the child was created: nothing to stop
            raise
        # SIGTERM for Ctrl-C too: SIGINT would make every Python process of the group print a traceback
        what = stop(process, signal.SIGTERM)
        if stopped is not None:
            stopped.append(f"{os.path.basename(str(cmd[0]))} {what}")
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)
