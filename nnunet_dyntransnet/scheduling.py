"""Running the protocol's trainings at scale: one per GPU at a time, as a SLURM job array, and a progress view.

The protocol (``scripts/run_protocol.py``) is about a hundred independent ``nnUNetv2_train``
runs. Each is a :class:`Training` (trainer, configuration, fold), resumable: finished when its
fold has ``checkpoint_final.pth``, continued with ``--c`` when it has ``checkpoint_latest.pth``.

- :func:`run_on_gpus`: every GPU runs one training at a time (``CUDA_VISIBLE_DEVICES``), the
  next waiting one starts when a GPU frees up; a log per training; a failed training does not
  stop the others.
- :func:`slurm_scripts`: a job array with one task per training (each task skips or resumes
  by the same rule) and a report job that waits for the whole array (``afterok``).
- :func:`progress`: done / running / failed / stopped / waiting per training, and the time
  left, from nnU-Net's own ``Epoch time`` lines in each fold's training logs.

Both runners write a status file per training into the protocol folder
(``$nnUNet_results/DatasetNNN_Name/protocol/status/``): ``running HOST PID``, ``done`` or
``failed EXIT_CODE``; :func:`progress` reads them.
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

__all__ = ["Training", "run_on_gpus", "slurm_scripts", "write_slurm_scripts", "submit_slurm", "progress", "format_progress",
           "epoch_times"]

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
    plans: str = "nnUNetPlans"

    @property
    def name(self) -> str:
        return f"{self.trainer}__{self.configuration}__fold{self.fold}"

    @property
    def finished(self) -> bool:
        return (self.fold_dir / "checkpoint_final.pth").is_file()

    def command(self, resume: Optional[bool] = None) -> List[str]:
        """The training command; with ``--c`` when ``resume``, or (None) when the fold has a checkpoint to continue."""
        if resume is None:
            resume = (self.fold_dir / "checkpoint_latest.pth").is_file()
        resume = ["--c"] if resume else []
        plans = ["-p", self.plans] if self.plans != "nnUNetPlans" else []
        return ["nnUNetv2_train", str(self.dataset), self.configuration, str(self.fold), "-tr", self.trainer, *plans,
                "-device", self.device, *resume]


def _status_file(protocol_dir: Path, training: Training) -> Path:
    return protocol_dir / "status" / training.name


def _write_status(protocol_dir: Path, training: Training, text: str) -> None:
    path = _status_file(protocol_dir, training)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def run_on_gpus(trainings: Sequence[Training], gpus: Sequence[str], protocol_dir: Path, dry_run: bool = False,
                poll_s: float = 1.0) -> Dict[str, int]:
    """Run ``trainings`` with at most one per GPU at a time; returns ``{training name: exit code}``.

    Finished trainings are skipped (code 0). Each training's output goes to
    ``protocol_dir/logs/NAME.log`` (appended to, so a resumed run keeps the first run's lines).
    """
    waiting = [t for t in trainings if not t.finished]
    codes = {t.name: 0 for t in trainings if t.finished}
    for t in trainings:
        if t.finished:
            print(f"# {t.fold_dir} is trained", flush=True)
    if dry_run:
        for i, t in enumerate(waiting):
            print(f"+ CUDA_VISIBLE_DEVICES={gpus[i % len(gpus)]} {shlex.join(t.command())}", flush=True)
        return codes
    (protocol_dir / "logs").mkdir(parents=True, exist_ok=True)
    free, running = list(gpus), {}  # gpu -> (training, process, log file)
    try:
        while waiting or running:
            while waiting and free:
                training, gpu = waiting.pop(0), free.pop(0)
                log = open(protocol_dir / "logs" / f"{training.name}.log", "a")
                cmd = training.command()
                print(f"+ CUDA_VISIBLE_DEVICES={gpu} {shlex.join(cmd)}  > {log.name}", flush=True)
                process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                           env={**os.environ, "CUDA_VISIBLE_DEVICES": gpu})
                _write_status(protocol_dir, training, f"running {socket.gethostname()} {process.pid}")
                running[gpu] = (training, process, log)
            time.sleep(poll_s)
            for gpu, (training, process, log) in list(running.items()):
                code = process.poll()
                if code is None:
                    continue
                log.close()
                codes[training.name] = code
                _write_status(protocol_dir, training, "done" if code == 0 else f"failed {code}")
                print(f"# {training.name} on GPU {gpu}: {'done' if code == 0 else f'failed (exit {code}), see {log.name}'}",
                      flush=True)
                del running[gpu]
                free.append(gpu)
    finally:  # Ctrl-C or SIGTERM: stop what runs; nnU-Net resumes it from its latest checkpoint next time
        for training, process, log in running.values():
            process.terminate()
            process.wait()
            log.close()
            _write_status(protocol_dir, training, "failed interrupted")
    return codes


_TASK = """#!/usr/bin/env bash
#SBATCH --job-name={job}
#SBATCH --array=0-{last}
#SBATCH --output={logs}/%x_%A_%a.log
{sbatch_lines}
# One nnU-Net training per array task. A finished fold is skipped; an interrupted one (time
# limit, preemption: SLURM sends SIGTERM) continues from its latest checkpoint with --c.
set -uo pipefail
{exports}
status={status}
mkdir -p "$status"
case "$SLURM_ARRAY_TASK_ID" in
{cases}
esac
if [ -f "$fold/checkpoint_final.pth" ]; then echo done > "$status/$name"; exit 0; fi
resume=(); [ -f "$fold/checkpoint_latest.pth" ] && resume=(--c)
echo "running $(hostname) $$" > "$status/$name"
"${{cmd[@]}}" "${{resume[@]}}"
code=$?
if [ $code -eq 0 ]; then echo done > "$status/$name"; else echo "failed $code" > "$status/$name"; fi
exit $code
"""

_REPORT = """#!/usr/bin/env bash
#SBATCH --job-name={job}_report
#SBATCH --output={logs}/%x_%j.log
{sbatch_lines}
# Runs after every training of the array finished successfully (sbatch --dependency=afterok).
set -euo pipefail
{exports}
{report}
"""


def slurm_scripts(trainings: Sequence[Training], report_command: Sequence[str], protocol_dir: Path,
                  job: str = "dyntransnet", sbatch_args: Sequence[str] = ()) -> Dict[str, str]:
    """The job array (``train.sbatch``, one task per training) and the report job (``report.sbatch``), as text.

    ``sbatch_args`` become ``#SBATCH`` lines of both (for example ``--partition=gpu``,
    ``--time=48:00:00``); each training task asks for one GPU (``--gres=gpu:1``) unless they say otherwise.
    """
    if not trainings:
        raise ValueError("no training to submit")
    lines = [f"#SBATCH {a}" for a in sbatch_args]
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
    train = _TASK.format(job=job, last=len(trainings) - 1, logs=logs, sbatch_lines="\n".join(train_lines),
                         exports=exports, status=shlex.quote(str(protocol_dir / "status")), cases=cases)
    report = _REPORT.format(job=job, logs=logs, sbatch_lines="\n".join(lines), exports=exports,
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
    """Write the scripts (:func:`write_slurm_scripts`) and submit them: the array, then the report ``afterok`` on it.

    Returns the two job ids. Raises ``RuntimeError`` naming sbatch's message if a submission fails.
    """
    folder = write_slurm_scripts(scripts, protocol_dir)
    ids = []
    for name, extra in (("train.sbatch", []), ("report.sbatch", None)):
        dependency = [f"--dependency=afterok:{ids[0]}"] if extra is None else []
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
    from nnunet_dyntransnet.report.results import read_training_log

    epochs = read_training_log(sorted(fold_dir.glob("training_log_*.txt")))
    return [values["epoch_time"] for _, values in sorted(epochs.items()) if "epoch_time" in values]


def _planned_epochs(fold_dir: Path) -> int:
    try:
        return int(json.loads((fold_dir / "debug.json").read_text())["num_epochs"])
    except (OSError, ValueError, KeyError):
        return DEFAULT_EPOCHS


def progress(trainings: Sequence[Training], protocol_dir: Path) -> List[Dict[str, object]]:
    """Per training: ``state`` (done, running, failed, stopped, waiting), epochs done of planned, mean epoch time
    (s) and ``left_s`` (seconds of training left; for a waiting one, estimated from the mean epoch time of the
    trainings of the same trainer, else of all)."""
    rows = []
    for t in trainings:
        status = _status_file(protocol_dir, t)
        recorded = status.read_text().split() if status.is_file() else []
        times = epoch_times(t.fold_dir)
        planned = _planned_epochs(t.fold_dir)
        if t.finished:
            state = "done"
        elif recorded[:1] == ["running"]:
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
