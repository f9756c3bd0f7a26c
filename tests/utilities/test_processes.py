"""The supervisor (utilities/processes.py): a stopped command stops everything it started, and says so.

Every process a test starts carries a tag in its environment, which its children inherit; after the command
has exited, no process with the tag may be left (an orphan).
"""
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from process_helpers import TAG, interruptible, tagged, wait_for


def _start(cmd, tag, env=None, cwd=None):
    env = {**os.environ, **(env or {}), TAG: tag}
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=interruptible)


# a command that runs a child which itself starts a grandchild, as nnUNetv2_train starts its augmentation workers
SUPERVISED = """
import subprocess, sys
from nnunet_dyntransnet.utilities import processes
from nnunet_dyntransnet.utilities.staging import exit_code_of, sigterm_raises
grandchild = "import subprocess, time; subprocess.Popen(['sleep', '600']); time.sleep(600)"
try:
    with sigterm_raises():
        processes.run([sys.executable, "-c", grandchild])
except KeyboardInterrupt as e:
    print("stopped", file=sys.stderr)
    sys.exit(exit_code_of(e))
"""


@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_the_supervisor_stops_the_whole_group(signum, status):
    tag = uuid.uuid4().hex
    proc = _start([sys.executable, "-c", SUPERVISED], tag)
    assert wait_for(lambda: len(tagged(tag)) >= 3, 60), "command, child and grandchild running"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status and "stopped" in err
    assert wait_for(lambda: not tagged(tag), 10), f"orphans left: {tagged(tag)}"


# a SIGTERM that lands while subprocess.Popen creates the child: after the fork, before Popen returns the process
SIGNAL_IN_POPEN = """
import os, signal, subprocess, sys
from nnunet_dyntransnet.utilities import processes
from nnunet_dyntransnet.utilities.staging import exit_code_of, sigterm_raises
class LandsInPopen(subprocess.Popen):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # its handler runs here, inside Popen, unless it is held
subprocess.Popen = LandsInPopen
stopped = []
try:
    with sigterm_raises():
        processes.run(["sleep", "600"], stopped=stopped)
except KeyboardInterrupt as e:
    print("stopped:", *stopped, file=sys.stderr)
    sys.exit(exit_code_of(e))
"""


def test_a_signal_while_the_child_starts_still_stops_it():
    """Without processes.starting() the SIGTERM raised inside Popen, the supervisor never got the child, and
    `sleep 600` ran on as an orphan."""
    tag = uuid.uuid4().hex
    proc = _start([sys.executable, "-c", SIGNAL_IN_POPEN], tag)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "stopped: sleep stopped by SIGTERM" in err, err[-2000:]
    assert wait_for(lambda: not tagged(tag), 10), f"orphans left: {tagged(tag)}"


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace():
    from nnunet_dyntransnet.utilities import processes

    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); " \
               "time.sleep(600)"
    process = processes.start([sys.executable, "-c", stubborn], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    assert processes.stop(process, grace=1.0) == "did not stop within 1 s of SIGTERM and was killed"
    assert not processes.group_alive(process.pid)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.slow
def test_sigterm_to_the_benchmark_stops_its_measuring_child(tmp_path):
    """Issue 28, case 8: SIGTERM to dyntransnet_benchmark left its measuring child running."""
    tag = uuid.uuid4().hex
    exe = Path(sys.executable).parent / "dyntransnet_benchmark"
    proc = _start([str(exe), "--patch", "32x64x64", "--device", "cpu", "--networks", "PlainConvUNet", "--rounds", "3",
                   "--out", str(tmp_path / "r.json")], tag)
    assert wait_for(lambda: len(tagged(tag)) >= 2, 300), "the measuring child started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143 and "the measuring child was stopped" in err, err[-2000:]
    assert wait_for(lambda: not tagged(tag), 10), f"orphans left: {tagged(tag)}"


@pytest.mark.slow
def test_sigterm_to_the_demo_stops_nnunet_and_says_what_it_stopped(tmp_path):
    """Issue 28, case 8: SIGTERM to dyntransnet_demo left nnU-Net's command running, which wrote a model the next
    demo took for its own."""
    tag = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update(nnUNet_n_proc_DA="1", nnUNet_def_n_proc="1", nnUNet_compile="false")
    exe = Path(sys.executable).parent / "dyntransnet_demo"
    proc = subprocess.Popen([str(exe), "--out", str(tmp_path / "demo"), "-n", "4", "--test", "1", "--device", "cpu",
                             "--minutes", "0.1"], env={**env, TAG: tag}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # nnU-Net's planning is the demo's first child (not any tagged process: importing nnU-Net runs `hostname`)
    def nnunet_running():
        return any(b"nnUNetv2_" in _cmdline(pid) for pid in tagged(tag))

    assert wait_for(nnunet_running, 300), "nnU-Net's first command started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=400)
    assert proc.returncode == 143, err[-3000:]
    assert "nnUNetv2_plan_and_preprocess stopped by SIGTERM" in err or "nnUNetv2_train stopped by SIGTERM" in err, \
        err[-3000:]
    assert wait_for(lambda: not tagged(tag), 10), f"orphans left: {tagged(tag)}"
    assert (tmp_path / "demo" / ".dyntransnet_demo").is_file(), "the demo marks what it wrote, stopped too"
