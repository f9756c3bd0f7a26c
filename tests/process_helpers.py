"""Finding the processes a test started: each carries a tag in its environment, which its children inherit, so
that after a command has exited no process with the tag may be left (an orphan)."""
import signal
import time
from pathlib import Path

TAG = "DYNTRANSNET_TEST_TAG"


def tagged(tag: str):
    """Pids of live processes whose environment carries ``TAG=tag``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().split(") ")[1].split()[0]
        except OSError:
            continue
        if f"{TAG}={tag}".encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def wait_for(predicate, seconds: float = 60.0, poll_s: float = 0.2):
    """Whether ``predicate()`` became true within ``seconds`` (asked every ``poll_s``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return False


def interruptible() -> None:
    """``preexec_fn`` for a command a test will send SIGINT: SIGINT back to its default. A shell without job control
    starts a background job (``pytest ... &``) with SIGINT ignored, the children inherit that, and Python then installs
    no KeyboardInterrupt handler: the Ctrl-C tests would wait for a command that never heard the signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
