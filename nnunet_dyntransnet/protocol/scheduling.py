"""Running the protocol's trainings at scale: one per GPU at a time, as a SLURM job array, and a progress view.

The protocol (``scripts/run_protocol.py``) is about a hundred independent ``nnUNetv2_train``
runs. Each is a :class:`Training` (trainer, configuration, fold), resumable: finished when its
final validation wrote ``validation/summary.json`` (nnU-Net writes ``checkpoint_final.pth``
before validating, so a fold killed during validation has the checkpoint and no summary: it is
validated again with ``--val``), continued with ``--c`` when it has ``checkpoint_latest.pth``.

- :func:`run_on_gpus`: every GPU runs one training at a time (``CUDA_VISIBLE_DEVICES``), the
  next waiting one starts when a GPU frees up; a log per training; a failed training does not
  stop the others.
- :func:`slurm_scripts`: a job array with one task per training (each task skips or resumes
  by the same rule) and a report job that runs when the array has ended (``afterany``) and
  writes the report only if every training finished.
- :func:`progress`: done / running / failed / stopped / waiting per training, and the time
  left, from nnU-Net's own ``Epoch time`` lines in each fold's training logs.

Both runners write a status file per training into the protocol folder
(``$nnUNet_results/DatasetNNN_Name/protocol/status/``): ``running HOST PID``, ``done``,
``failed EXIT_CODE`` or ``stopped SIGNAL`` (SIGTERM or Ctrl-C stopped it; a rerun continues it);
:func:`progress` reads them, and a runner never starts a training whose status names a live
process on its host.
"""
from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from nnunet_dyntransnet.utilities import processes
from nnunet_dyntransnet.utilities.staging import pid_alive

__all__ = ["Training", "parse_gpus", "alive_elsewhere", "run_on_gpus", "slurm_scripts", "check_slurm_inputs", "write_slurm_scripts", "submit_slurm", "progress", "format_progress",
           "epoch_times", "write_status"]

DEFAULT_EPOCHS = 1000  # nnU-Net's, when a fold has no debug.json yet


@dataclass(frozen=True)
class Training:
    """One ``nnUNetv2_train DATASET CONFIGURATION FOLD -tr TRAINER``; ``fold_dir`` is where nnU-Net writes it."""

    dataset: int
    trainer: str
    configuration: str
    fold: int
    fold_dir: Path
    device: str = "cuda"

    @property
    def name(self) -> str:
        return f"{self.trainer}__{self.configuration}__fold{self.fold}"

    @property
    def finished(self) -> bool:
        """Trained and validated: nnU-Net's final validation wrote its summary (the last thing a training does)."""
        return (self.fold_dir / "validation" / "summary.json").is_file()

    def command(self, resume: Optional[bool] = None) -> List[str]:
        """The training command. ``resume=None``: by the fold's files, ``--val`` after a final checkpoint whose
        validation did not finish, ``--c`` with a checkpoint to continue; ``False``: a fresh start."""
        extra: List[str] = []
        if resume is None and (self.fold_dir / "checkpoint_final.pth").is_file():
            extra = ["--val"]
        elif resume or (resume is None and (self.fold_dir / "checkpoint_latest.pth").is_file()):
            extra = ["--c"]
        return ["nnUNetv2_train", str(self.dataset), self.configuration, str(self.fold), "-tr", self.trainer,
                "-device", self.device, *extra]


def parse_gpus(text: str, available: Optional[int] = None) -> List[str]:
    """``--gpus 0,1,3`` -> ``["0", "1", "3"]``, checked: non-empty, whole numbers, no repeats, and below
    ``available`` (the machine's CUDA device count, when known).

    Raises:
        ValueError: naming the value and what is allowed.
    """
    gpus = [g.strip() for g in text.split(",")]
    if not text.strip() or any(not g for g in gpus):
        raise ValueError(f"--gpus {text!r}: give GPU ids separated by commas, e.g. --gpus 0,1")
    # ASCII digits only: str.isdigit also takes "２" and "²", which CUDA_VISIBLE_DEVICES does not
    bad = [g for g in gpus if not (g.isascii() and g.isdigit())]
    if bad:
        raise ValueError(f"--gpus {text}: {bad[0]!r} is not a GPU id (a whole number, as in CUDA_VISIBLE_DEVICES)")
    gpus = [str(int(g)) for g in gpus]  # compared as numbers: "01" is GPU 1
    repeated = sorted({g for g in gpus if gpus.count(g) > 1}, key=int)
    if repeated:
        raise ValueError(f"--gpus {text}: GPU {', '.join(repeated)} given more than once; each GPU runs one training "
                         f"at a time, list it once")
    if available is not None:
        missing = [g for g in gpus if int(g) >= available]
        if missing:
            raise ValueError(f"--gpus {text}: this machine has {available} CUDA device(s) (0 to {available - 1}); "
                             f"there is no GPU {', '.join(missing)}")
    return gpus


def alive_elsewhere(protocol_dir: Path, training: Training) -> Optional[int]:
    """The pid of a live process on this host that the status file says runs ``training`` (another runner, or an
    orphan of a killed one), else None: such a training must not be started a second time."""
    status = _status_file(protocol_dir, training)
    recorded = status.read_text().split() if status.is_file() else []
    if len(recorded) == 3 and recorded[0] == "running" and recorded[1] == socket.gethostname() \
            and recorded[2].isdigit() and int(recorded[2]) != os.getpid() and pid_alive(int(recorded[2])):
        return int(recorded[2])
    return None


def _status_file(protocol_dir: Path, training: Training) -> Path:
    return protocol_dir / "status" / training.name


def write_status(protocol_dir: Path, training: Training, text: str) -> None:
    path = _status_file(protocol_dir, training)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def run_on_gpus(trainings: Sequence[Training], gpus: Sequence[str], protocol_dir: Path, dry_run: bool = False,
                poll_s: float = 1.0) -> Dict[str, int]:
    """Run ``trainings`` with at most one per GPU at a time; returns ``{training name: exit code}``.

    Finished trainings are skipped (code 0); one that a live process on this host already runs is not
    started again (code -1). Each training's output goes to ``protocol_dir/logs/NAME.log`` (appended
    to, so a resumed run keeps the first run's lines). SIGTERM or Ctrl-C stops every training this
    call started, records them as ``stopped``, and raises (:class:`~nnunet_dyntransnet.utilities.staging.Terminated`
    for SIGTERM).
    """
    from nnunet_dyntransnet.utilities.staging import Terminated, sigterm_raises

    if len(set(gpus)) != len(gpus) or not gpus:
        raise ValueError(f"GPUs {list(gpus)}: give each GPU once (see parse_gpus)")
    waiting, codes = [], {}
    for t in trainings:
        pid = None if t.finished or dry_run else alive_elsewhere(protocol_dir, t)
        if t.finished:
            print(f"# {t.fold_dir} is trained", flush=True)
            codes[t.name] = 0
        elif pid:
            print(f"# {t.name} is running already (pid {pid} on this host, see its status file): not started again",
                  flush=True)
            codes[t.name] = -1
        else:
            waiting.append(t)
    if dry_run:
        for i, t in enumerate(waiting):
            print(f"+ CUDA_VISIBLE_DEVICES={gpus[i % len(gpus)]} {shlex.join(t.command())}", flush=True)
        return codes
    (protocol_dir / "logs").mkdir(parents=True, exist_ok=True)
    free, running = list(gpus), {}  # gpu -> (training, process, log file)
    try:
        with sigterm_raises():
            _schedule(waiting, free, running, codes, protocol_dir, poll_s)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: stop what runs; nnU-Net resumes it from its latest checkpoint
        signal_name = "SIGTERM" if isinstance(e, Terminated) else "SIGINT"
        for training, process, log in running.values():
            what = processes.stop(process)  # the whole group, SIGTERM, a grace before anything is killed
            log.close()
            write_status(protocol_dir, training, f"stopped {signal_name}")
            print(f"# {training.name}: {what} ({signal_name} to the protocol); the next run continues it", flush=True)
        raise
    return codes


def _schedule(waiting: List[Training], free: List[str], running: dict, codes: Dict[str, int], protocol_dir: Path,
              poll_s: float) -> None:
    """:func:`run_on_gpus`' loop: start a waiting training on each free GPU, collect the finished ones."""
    while waiting or running:
        while waiting and free:
            training, gpu = waiting.pop(0), free.pop(0)
            log = open(protocol_dir / "logs" / f"{training.name}.log", "a")
            cmd = training.command()
            print(f"+ CUDA_VISIBLE_DEVICES={gpu} {shlex.join(cmd)}  > {log.name}", flush=True)
            with processes.starting():  # a stop while it starts waits until it is in `running`, which is stopped
                process = processes.start(cmd, stdout=log, stderr=subprocess.STDOUT,
                                          env={**os.environ, "CUDA_VISIBLE_DEVICES": gpu})
                running[gpu] = (training, process, log)
            write_status(protocol_dir, training, f"running {socket.gethostname()} {process.pid}")
        time.sleep(poll_s)
        for gpu, (training, process, log) in list(running.items()):
            code = process.poll()
            if code is None:
                continue
            log.close()
            codes[training.name] = code
            write_status(protocol_dir, training, "done" if code == 0 else f"failed {code}")
            print(f"# {training.name} on GPU {gpu}: {'done' if code == 0 else f'failed (exit {code}), see {log.name}'}",
                  flush=True)
            del running[gpu]
            free.append(gpu)


_TASK = """#!/usr/bin/env bash
#SBATCH --job-name={job}
#SBATCH --array=0-{last}
{output}
{sbatch_lines}
# One nnU-Net training per array task. A finished fold (its validation summary exists) is skipped; one
# whose final validation did not finish is validated with --val; an interrupted one (time limit,
# preemption: SLURM sends SIGTERM) continues from its latest checkpoint with --c.
set -uo pipefail
{exports}
status={status}
mkdir -p "$status"
case "$SLURM_ARRAY_TASK_ID" in
{cases}
esac
if [ -f "$fold/validation/summary.json" ]; then echo done > "$status/$name"; exit 0; fi
extra=()
if [ -f "$fold/checkpoint_final.pth" ]; then extra=(--val); elif [ -f "$fold/checkpoint_latest.pth" ]; then extra=(--c); fi
echo "running $(hostname) $$" > "$status/$name"
# SIGTERM (the time limit, scancel): pass it on to the training, record the stop, exit as SLURM expects
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; echo "stopped SIGTERM" > "$status/$name"; exit 143' TERM
"${{cmd[@]}}" "${{extra[@]}}" &
child=$!
wait "$child"
code=$?
if [ $code -eq 0 ]; then echo done > "$status/$name"; else echo "failed $code" > "$status/$name"; fi
exit $code
"""

_REPORT = """#!/usr/bin/env bash
#SBATCH --job-name={job}_report
{output}
{sbatch_lines}
# Runs after the array has ended (sbatch --dependency=afterany), and writes the report only if every
# training finished; otherwise it names the unfinished ones and fails. A task resubmitted after a
# time limit is not part of this dependency: once it has finished, run the protocol's --report-only.
set -euo pipefail
{exports}
missing=0
for summary in {summaries}; do
  if [ ! -f "$summary" ]; then echo "not finished: ${{summary%/validation/summary.json}}" >&2; missing=1; fi
done
if [ $missing -ne 0 ]; then echo "no report: finish (resubmit) those trainings, then run the protocol with --report-only" >&2; exit 1; fi
{report}
"""


def _sbatch_line(arg: str) -> str:
    """An ``#SBATCH`` line; sbatch splits these at white space unless the argument is in double quotes (so an
    argument cannot hold one: :func:`check_slurm_inputs` refuses that first, naming where it came from)."""
    if '"' in arg:
        raise ValueError(f"an #SBATCH argument cannot hold a double quote: {arg}")
    return f'#SBATCH "{arg}"' if any(c.isspace() for c in arg) else f"#SBATCH {arg}"


def check_slurm_inputs(sbatch_args: Sequence[str], results_root: str) -> None:
    """Refuse, before any work, what the scripts of :func:`slurm_scripts` cannot carry: a double quote in an
    ``--sbatch`` argument, or in ``$nnUNet_results`` (the jobs' ``#SBATCH --output`` log path lies under it), where
    SLURM also reads ``%`` as a file name pattern. Raises ``ValueError`` naming the value and what to do."""
    for arg in sbatch_args:
        if '"' in arg:
            raise ValueError(f"--sbatch={arg}: an #SBATCH line cannot hold a double quote; drop it (an argument "
                             f"with spaces is quoted for you)")
    bad = sorted({c for c in results_root if c in '"%'})
    if bad:
        raise ValueError(f"$nnUNet_results ({results_root}) holds {' and '.join(repr(c) for c in bad)}: the jobs' logs "
                         f"go under it in an #SBATCH --output line, which cannot hold a double quote and reads % as a "
                         f"SLURM file name pattern. Use an nnUNet_results path without them for --slurm")


def slurm_scripts(trainings: Sequence[Training], report_command: Sequence[str], protocol_dir: Path,
                  job: str = "dyntransnet", sbatch_args: Sequence[str] = ()) -> Dict[str, str]:
    """The job array (``train.sbatch``, one task per training) and the report job (``report.sbatch``), as text.

    ``sbatch_args`` become ``#SBATCH`` lines of both (for example ``--partition=gpu``,
    ``--time=48:00:00``); each training task asks for one GPU (``--gres=gpu:1``) unless they say otherwise.
    """
    if not trainings:
        raise ValueError("no training to submit")
    lines = [_sbatch_line(a) for a in sbatch_args]
    train_lines = list(lines) if any(a.startswith(("--gres", "--gpus")) for a in sbatch_args) else [*lines, "#SBATCH --gres=gpu:1"]
    # nnU-Net's folders and worker count travel with the job (sbatch passes the environment, but a
    # requeued task may start in another shell)
    exports = "\n".join(f"export {k}={shlex.quote(os.environ[k])}" for k in
                        ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_n_proc_DA", "nnUNet_compile",
                         "nnUNet_extTrainer") if os.environ.get(k))
    cases = "\n".join(
        f"  {i}) name={shlex.quote(t.name)}; fold={shlex.quote(str(t.fold_dir))}; "
        f"cmd=({shlex.join(t.command(resume=False))}) ;;"
        for i, t in enumerate(trainings))
    logs = protocol_dir / "logs"
    train = _TASK.format(job=job, last=len(trainings) - 1, output=_sbatch_line(f"--output={logs}/%x_%A_%a.log"),
                         sbatch_lines="\n".join(train_lines), exports=exports,
                         status=shlex.quote(str(protocol_dir / "status")), cases=cases)
    summaries = " ".join(shlex.quote(str(t.fold_dir / "validation" / "summary.json")) for t in trainings)
    report = _REPORT.format(job=job, output=_sbatch_line(f"--output={logs}/%x_%j.log"),
                            sbatch_lines="\n".join(lines), exports=exports, summaries=summaries,
                            report=shlex.join(str(c) for c in report_command))
    return {"train.sbatch": train, "report.sbatch": report}


def write_slurm_scripts(scripts: Dict[str, str], protocol_dir: Path) -> Path:
    """Write :func:`slurm_scripts`' scripts into ``protocol_dir/slurm`` (and create the logs folder they name)."""
    folder = protocol_dir / "slurm"
    folder.mkdir(parents=True, exist_ok=True)
    (protocol_dir / "logs").mkdir(parents=True, exist_ok=True)
    for name, text in scripts.items():
        (folder / name).write_text(text)
    return folder


def submit_slurm(scripts: Dict[str, str], protocol_dir: Path) -> List[str]:
    """Write the scripts (:func:`write_slurm_scripts`) and submit them: the array, then the report ``afterany`` on it.

    Returns the two job ids. Raises ``RuntimeError`` naming sbatch's message if a submission fails.
    """
    folder = write_slurm_scripts(scripts, protocol_dir)
    ids = []
    for name, extra in (("train.sbatch", []), ("report.sbatch", None)):
        dependency = [f"--dependency=afterany:{ids[0]}"] if extra is None else []
        try:
            done = subprocess.run(["sbatch", "--parsable", *dependency, str(folder / name)], capture_output=True,
                                  text=True)
        except FileNotFoundError:
            raise RuntimeError("sbatch not found: run --slurm --submit on a SLURM login node, or submit "
                               f"{folder / 'train.sbatch'} yourself") from None
        if done.returncode != 0:
            raise RuntimeError(f"sbatch {folder / name} failed: {done.stderr.strip() or done.stdout.strip()}")
        ids.append(done.stdout.strip().split(";")[0])
    return ids


def epoch_times(fold_dir: Path) -> List[float]:
    """The durations (s) of a fold's epochs, from nnU-Net's ``Epoch time`` lines in its training logs (an epoch
    repeated after ``--c`` counts once, as the report's log reader keeps it)."""
    from nnunet_dyntransnet.evaluation.results import read_training_log

    epochs = read_training_log(sorted(fold_dir.glob("training_log_*.txt")))
    return [values["epoch_time"] for _, values in sorted(epochs.items()) if "epoch_time" in values]


def trainer_epochs(training: Training) -> Optional[int]:
    """The number of epochs ``training``'s trainer plans, as its ``__init__`` sets it (None if it cannot be built).

    The trainer is built from the dataset's plans in ``$nnUNet_preprocessed`` with ``nnUNet_results``
    pointed at a temporary folder, since nnU-Net's ``__init__`` creates the fold folder and a log.
    """
    import contextlib
    import io
    import tempfile

    try:
        import torch
        from nnunetv2.utilities.dataset_name_id_conversion import convert_id_to_dataset_name

        from nnunet_dyntransnet.trainer_search_path import find_trainer_class

        cls = find_trainer_class(training.trainer)
        pre = Path(os.environ["nnUNet_preprocessed"]) / convert_id_to_dataset_name(training.dataset)
        # nnUNetv2_train adds continue_training to the plans before it builds the trainer (nnunetv2 2.8)
        plans = {**json.loads((pre / "nnUNetPlans.json").read_text()), "continue_training": False}
        dataset_json = json.loads((pre / "dataset.json").read_text())
        saved = os.environ.get("nnUNet_results")
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            os.environ["nnUNet_results"] = tmp  # nnU-Net reads it when the trainer is built
            try:
                trainer = cls(plans, training.configuration, training.fold, dataset_json, torch.device("cpu"))
            finally:
                if saved is None:
                    del os.environ["nnUNet_results"]
                else:
                    os.environ["nnUNet_results"] = saved
        return int(trainer.num_epochs)
    except Exception:  # any trainer, any plans: the estimate falls back, the progress view still shows
        return None


def _planned_epochs(training: Training, by_trainer: Dict[str, Optional[int]]) -> int:
    """The fold's own count (debug.json, once it started), else its trainer's, else nnU-Net's default."""
    try:
        return int(json.loads((training.fold_dir / "debug.json").read_text())["num_epochs"])
    except (OSError, ValueError, KeyError):
        pass
    if training.trainer not in by_trainer:
        by_trainer[training.trainer] = trainer_epochs(training)
    return by_trainer[training.trainer] or DEFAULT_EPOCHS


def progress(trainings: Sequence[Training], protocol_dir: Path) -> List[Dict[str, object]]:
    """Per training: ``state`` (done, running, failed, stopped, waiting), epochs done of planned, mean epoch time
    (s) and ``left_s`` (seconds of training left; for a waiting one, estimated from the mean epoch time of the
    trainings of the same trainer, else of all)."""
    rows, by_trainer = [], {}
    for t in trainings:
        status = _status_file(protocol_dir, t)
        recorded = status.read_text().split() if status.is_file() else []
        times = epoch_times(t.fold_dir)
        planned = _planned_epochs(t, by_trainer)
        dead_here = (len(recorded) == 3 and recorded[1] == socket.gethostname() and recorded[2].isdigit()
                     and not pid_alive(int(recorded[2])))
        if t.finished:
            state = "done"
        elif recorded[:1] == ["running"] and not dead_here:
            state = "running"
        elif recorded[:1] == ["failed"]:
            state = "failed"
        elif times:
            state = "stopped"  # began, no runner says it runs: continue it (run_protocol resumes with --c)
        else:
            state = "waiting"
        rows.append(dict(name=t.name, trainer=t.trainer, state=state, epochs=len(times), planned=planned,
                         epoch_s=sum(times) / len(times) if times else None,
                         left_s=0.0 if state == "done" else None))
    for row in rows:
        if row["left_s"] is not None:
            continue
        same = [r["epoch_s"] for r in rows if r["epoch_s"] and r["trainer"] == row["trainer"]]
        known = same or [r["epoch_s"] for r in rows if r["epoch_s"]]
        epoch_s = row["epoch_s"] or (sum(known) / len(known) if known else None)
        row["left_s"] = None if epoch_s is None else max(0, row["planned"] - row["epochs"]) * epoch_s
    return rows


def _hours(seconds: Optional[float]) -> str:
    return "?" if seconds is None else f"{seconds / 3600:.1f} h"


def format_progress(rows: Sequence[Dict[str, object]], gpus: int = 1) -> str:
    """A table of :func:`progress`'s rows and a summary line (time left spread over ``gpus`` devices)."""
    lines = ["| training | state | epochs | epoch time | left |", "|---|---|---|---|---|"]
    for r in rows:
        epoch = "-" if r["epoch_s"] is None else f"{r['epoch_s']:.0f} s"
        lines.append(f"| {r['name']} | {r['state']} | {r['epochs']}/{r['planned']} | {epoch} | {_hours(r['left_s'])} |")
    counts = {s: sum(r["state"] == s for r in rows) for s in ("done", "running", "failed", "stopped", "waiting")}
    lefts = [r["left_s"] for r in rows]
    total = None if any(x is None for x in lefts) else sum(lefts)
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines.append("")
    lines.append(f"{len(rows)} trainings: {summary}. Training time left: {_hours(total)} on one GPU"
                 + (f", about {_hours(None if total is None else total / gpus)} on {gpus}" if gpus > 1 else "")
                 + (" (unknown until one epoch of each trainer is logged)" if total is None else ""))
    return "\n".join(lines)
