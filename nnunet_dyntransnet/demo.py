"""``dyntransnet_demo``: the whole pipeline on a synthetic liver phantom, in minutes, with nothing to set up.

phantom -> nnUNetv2_plan_and_preprocess -> nnUNetv2_train (DynTransNet) -> nnUNetv2_predict on
held-out cases -> Dice / precision / recall per class next to an intensity-threshold baseline,
PNG overlays and nnU-Net's training-progress plot, all under ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from nnunet_dyntransnet.evaluation.threshold_baseline import CLASSES, OVERLAP
from nnunet_dyntransnet.trainers.demo import ENOUGH, QUIET_STEP_ENV

COMMAND = "dyntransnet_demo"
DATASET_ID = 990
DATASET = f"Dataset{DATASET_ID}_LiverPhantomCT"
# Seconds a training step of the CPU demo network takes on a quiet 2-core machine: the steps a budget is planned for.
# A busier or slower machine trains fewer in the same minutes, and the demo says so instead of presenting the score
# of a half-trained network as DynTransNet's. It is the "seconds_per_step" of the committed run in docs/demo/
# (results.json, a run with nothing else on the machine); tests/test_docs_figures.py fails when the two differ.
QUIET_CPU_SECONDS_PER_STEP = 0.52
_STOPPED: List[str] = []  # what a Ctrl-C or SIGTERM stopped, for the last line


def _log(message: str) -> None:
    print(f"[dyntransnet_demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _run(cmd: List[str], env: Dict[str, str]) -> None:
    """``cmd`` under the supervisor (utilities/processes.py): Ctrl-C or SIGTERM stops it and all it started."""
    from nnunet_dyntransnet.utilities import processes

    _log("$ " + " ".join(cmd))
    exe = Path(sys.executable).parent / cmd[0]
    proc = processes.run([str(exe) if exe.exists() else cmd[0], *cmd[1:]], env=env, stopped=_STOPPED)
    if proc.returncode != 0:
        raise SystemExit(f"dyntransnet_demo: error: {cmd[0]} exited with {proc.returncode} (see its output above)")


def _read(path: Path) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _overlays(out: Path, cases: Sequence[str], images: Path, truths: Path, preds: Path, baseline) -> List[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap([(0, 0, 0, 0), (0.1, 0.8, 0.2, 0.45), (1.0, 0.2, 0.1, 0.7)])
    written = []
    (out / "overlays").mkdir(exist_ok=True)
    for case in cases:
        image = _read(images / f"{case}_0000.nii.gz")
        truth, pred = _read(truths / f"{case}.nii.gz"), _read(preds / f"{case}.nii.gz")
        z = int(np.argmax((truth == 2).sum((1, 2)))) if (truth == 2).any() else int(np.argmax((truth >= 1).sum((1, 2))))
        fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
        shown = np.clip(image[z], -150, 250)
        for ax, (title, lab) in zip(axes, (("image", None), ("ground truth", truth), ("DynTransNet", pred),
                                           ("threshold baseline", baseline.predict(image)))):
            ax.imshow(shown, cmap="gray")
            if lab is not None:
                ax.imshow(lab[z], cmap=cmap, vmin=0, vmax=2, interpolation="nearest")
            ax.set_title(title)
            ax.axis("off")
        fig.suptitle(f"{case}, slice {z} (green: liver, red: tumor)")
        path = out / "overlays" / f"{case}.png"
        fig.savefig(path, dpi=80, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def _table(results: Dict) -> str:
    # in percent, as dyntransnet_report prints the same metrics (results.json keeps the fractions)
    lines = ["| method | class | Dice (%) | precision (%) | recall (%) |", "|---|---|---|---|---|"]
    for method in ("DynTransNet", "threshold baseline"):
        for cls in CLASSES:
            m = results[method][cls]
            fmt = [f"{100 * m[k]:.2f}" if m[k] is not None else "n/a" for k in OVERLAP]
            lines.append(f"| {method} | {cls} | " + " | ".join(fmt) + " |")
    return "\n".join(lines)


def _trained_for(fold_dir: Path) -> Optional[tuple]:
    """(minutes, steps per epoch) the fold's finished training had (its debug.json), or None if it has none."""
    if not (fold_dir / "checkpoint_final.pth").is_file():
        return None
    try:
        debug = json.loads((fold_dir / "debug.json").read_text())
        return float(debug["train_minutes"]), int(debug["num_iterations_per_epoch"])
    except (OSError, ValueError, KeyError):
        return (float("nan"), 0)  # an older demo's model: train again


def _must_train(fold_dir: Path, out: Path, minutes: float, iterations: int) -> bool:
    """Whether the demo trains: not if ``fold_dir`` holds a model trained for this budget and epoch length. One
    trained for another is deleted first when it lies under ``out`` (the demo's own); elsewhere it is refused."""
    trained = _trained_for(fold_dir)
    if trained == (minutes, iterations):
        _log(f"reusing the model in {fold_dir}, trained for the same budget (delete it to train again)")
        return False
    if trained is not None:
        if out not in fold_dir.parents:
            raise SystemExit(f"dyntransnet_demo: error: {fold_dir} was trained for {trained[0]:g} minutes in epochs "
                             f"of {trained[1]} steps, not {minutes:g} / {iterations}; it lies outside --out, so "
                             f"the demo does not delete it: move it away, or pass the same --minutes and --iterations")
        _log(f"{fold_dir} was trained for {trained[0]:g} minutes in epochs of {trained[1]} steps: training again "
             f"for {minutes:g} / {iterations}")
        shutil.rmtree(fold_dir)
    return True


def _trained(fold_dir: Path, steps_per_epoch: int):
    """(each epoch's duration in s, the steps trained) from nnU-Net's training logs of the fold; an epoch the budget
    cut short counts the steps it ran."""
    from nnunet_dyntransnet.evaluation.results import read_training_log

    epochs = [v for _, v in sorted(read_training_log(sorted(fold_dir.glob("training_log_*.txt"))).items())
              if "epoch_time" in v]
    return [v["epoch_time"] for v in epochs], sum(v.get("steps", steps_per_epoch) for v in epochs)


def _training_summary(epoch_s: Sequence[float], steps_per_epoch: int, minutes: float, device: str,
                      steps: Optional[int] = None) -> Dict:
    """Epochs and steps trained (``steps``; all epochs whole when None), against the steps a quiet machine trains
    in the budget (CPU only: a GPU's speed varies too much to plan for), and a plain sentence when too few were
    trained to mean much."""
    steps = len(epoch_s) * steps_per_epoch if steps is None else steps
    planned = int(minutes * 60 / QUIET_CPU_SECONDS_PER_STEP) if device == "cpu" else None
    summary = (f"Trained {len(epoch_s)} epoch(s) of up to {steps_per_epoch} steps = {steps} steps in "
               f"{sum(epoch_s) / 60:.1f} of {minutes:g} minutes"
               + (f"; a quiet 2-core machine trains about {planned} in this budget." if planned else "."))
    representative = planned is None or steps >= ENOUGH * planned
    if not representative:
        summary += (f"\n\n**This machine trained {steps} of about {planned} planned steps ({steps / planned:.0%}): the "
                    f"network below is under-trained and its scores are not representative of DynTransNet.** The "
                    f"machine was slower or busier than planned for; run again with --minutes "
                    f"{minutes * planned / max(steps, 1):.0f} (or on a quieter machine) for a representative result.")
    return {"epochs": len(epoch_s), "steps": steps, "steps_planned": planned, "representative": representative,
            "seconds_per_step": sum(epoch_s) / steps if steps else None, "summary": summary}


def _progress_figure(fold_dir: Path, trainer: str, path: Path, training: Dict) -> None:
    """Loss and pseudo Dice per epoch from nnU-Net's training log, drawn by the report (markers, so that a
    training of one epoch shows), saying above them when the run trained too few steps to mean much."""
    from types import SimpleNamespace

    from nnunet_dyntransnet.evaluation.figures import training_curves

    logs = sorted(fold_dir.glob("training_log_*.txt"))
    note = "" if training["representative"] else (
        f"under-trained: {training['steps']} of about {training['steps_planned']} planned steps; not representative")
    if logs:
        training_curves(SimpleNamespace(name=trainer, logs={"fold_0": logs}), path, note)


def _about(args, trainer: str, started: float) -> str:
    """What results.md describes: the run (date, device, trainer, total time), the rows and the other numbers."""
    network = ("the demo's CPU network: DynTransNet with widths capped at 8 to 64 channels, 16 channels per head and "
               "4-token windows, so that 2 cores train it in minutes" if trainer.endswith("CPU") else
               "DynTransNet at the plan's widths")
    return (f"Run of {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))} on {args.device}, trainer `{trainer}` "
            f"(fold 0), {(time.time() - started) / 60:.1f} minutes in all (phantom, planning and preprocessing, "
            f"training, nnU-Net's validation, prediction, scoring).\n\n"
            f"The \"DynTransNet\" rows are {network}. The threshold baseline labels each voxel by intensity alone: per "
            f"class, the interval of intensities with the best Dice on the training cases. nnU-Net's \"Mean Validation "
            f"Dice\" printed at the end of training scores fold 0's validation cases per label (liver without tumor, "
            f"tumor); the table below scores the held-out cases, with the whole liver.")


def main(argv: Optional[Sequence[str]] = None) -> int:
    from nnunet_dyntransnet.utilities.staging import exit_code_of, sigterm_raises

    out: Optional[Path] = None  # set once --out is claimed: from then on a stop names it and it gets its marker
    # The handler comes first, before torch and nnU-Net are imported: their imports start children of their own
    # (nnU-Net runs `hostname`), and a SIGTERM then must stop the demo as one later does (exit 143 with a line that
    # says what was stopped), not kill it by the signal's default action.
    try:
        with sigterm_raises():
            args, minutes = _arguments(argv)
            started = time.time()
            from nnunet_dyntransnet.utilities.ownership import Claim, OwnershipError

            try:  # before anything is written: the demo reuses and updates only a folder whose every file it wrote
                Claim(COMMAND, option="--out").folder(args.out, overwrite=False, reusable=True)
            except OwnershipError as e:
                print(f"{COMMAND}: error: {e}", file=sys.stderr)
                return 2
            out = args.out.expanduser().resolve()
            out.mkdir(parents=True, exist_ok=True)
            return _demo(args, out, minutes, started)
    except KeyboardInterrupt as e:
        stopped = "; ".join(_STOPPED) or "nothing was running"
        kept = (f" {out} keeps what finished (the phantom, the plans, a trained model); run the same command again "
                f"to continue") if out is not None else " Nothing was written"
        print(f"{COMMAND}: {str(e) or 'interrupted (Ctrl-C)'}: {stopped}.{kept}", file=sys.stderr)
        return exit_code_of(e)
    finally:  # what this run wrote into --out, also when it failed or was stopped, so that the next run may reuse it
        if out is not None:
            from nnunet_dyntransnet.utilities.ownership import write_marker

            write_marker(out, COMMAND)


def _arguments(argv: Optional[Sequence[str]]):
    """The parsed, checked arguments and the training budget in minutes (its default depends on the device)."""
    import torch

    from nnunet_dyntransnet.utilities.command import plain_text

    parser = argparse.ArgumentParser(prog="dyntransnet_demo", description=plain_text(__doc__.split("\n\n")[0]))
    parser.add_argument("--out", type=Path, default=Path("dyntransnet_demo"), help="working folder (default ./dyntransnet_demo)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="training time budget (default: 8 on CPU, 15 on a GPU)")
    parser.add_argument("-n", type=int, default=32, help="phantom training cases (default 32)")
    parser.add_argument("--test", type=int, default=8, help="held-out phantom cases (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=25,
                        help="training steps per epoch (default 25: short epochs, so that the budget's last epoch "
                             "wastes little and a slow machine still trains several)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    minutes = args.minutes if args.minutes is not None else (8.0 if args.device == "cpu" else 15.0)
    if args.iterations < 1:  # checked before anything is written
        parser.error(f"--iterations must be at least 1, got {args.iterations}")
    if not minutes > 0 or minutes == float("inf"):
        parser.error(f"--minutes must be a positive number of minutes, got {minutes:g}")
    return args, minutes


def _demo(args, out: Path, minutes: float, started: float) -> int:
    """The whole demo: nnU-Net's folders, the model (phantom, planning, training), its predictions, the scores."""
    env = _nnunet_environment(out)
    raw = Path(env["nnUNet_raw"]) / DATASET
    trainer = "nnUNetTrainerDynTransNetDemoCPU" if args.device == "cpu" else "nnUNetTrainerDynTransNetDemoGPU"
    fold_dir = _trained_model(args, env, raw, trainer, out, minutes)
    preds = _predictions(args, env, raw, trainer, out)
    _score_and_write(args, raw, preds, fold_dir, trainer, out, minutes, started)
    return 0


def _nnunet_environment(out: Path) -> Dict[str, str]:
    """nnU-Net's folders (the user's, else under ``out``) and a small machine's worker counts, for every command."""
    env = dict(os.environ)
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        if not env.get(var):
            env[var] = str(out / var)
    # one augmentation worker beside the training process on a 2-core machine
    env.setdefault("nnUNet_n_proc_DA", str(max(1, min(8, (os.cpu_count() or 2) - 1))))
    # nnU-Net's default of 8 processes for validation export: each imports torch, slow on a small machine
    env.setdefault("nnUNet_def_n_proc", str(max(1, min(8, os.cpu_count() or 1))))
    os.environ.update({k: env[k] for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")})
    _log(f"nnUNet_raw={env['nnUNet_raw']} nnUNet_preprocessed={env['nnUNet_preprocessed']} "
         f"nnUNet_results={env['nnUNet_results']}")
    return env


def _trained_model(args, env: Dict[str, str], raw: Path, trainer: str, out: Path, minutes: float) -> Path:
    """The phantom, nnU-Net's planning and the training for the budget, each skipped when already done; returns the
    fold's folder."""
    from nnunet_dyntransnet.dataset_conversion.phantom import write_phantom_dataset

    if raw.is_dir():
        _log(f"reusing the phantom in {raw}")
    else:
        _log(f"writing the phantom ({args.n} training + {args.test} held-out cases)")
        write_phantom_dataset(DATASET_ID, args.n, args.test, "ct", args.seed)
    if not (Path(env["nnUNet_preprocessed"]) / DATASET / "nnUNetPlans.json").is_file():
        # -npfp: nnU-Net's fingerprint extraction otherwise starts 8 processes, each importing torch, which on
        # a 2-core machine costs more than it gains
        _run(["nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres", "-np", "2", "-npfp", "2",
              "--verify_dataset_integrity"], env)
    # the training runs for the budget (trainers/budget.py): as many epochs as fit, the schedule sized to them
    env["DYNTRANSNET_DEMO_ITERATIONS"] = str(args.iterations)
    env["DYNTRANSNET_TRAIN_MINUTES"] = str(minutes)
    if args.device == "cpu":  # the trainer warns after its first epoch when this machine is too slow for the budget
        env[QUIET_STEP_ENV] = str(QUIET_CPU_SECONDS_PER_STEP)
    _log(f"training for {minutes:g} minutes (DYNTRANSNET_TRAIN_MINUTES), epochs of {args.iterations} steps")
    fold_dir = Path(env["nnUNet_results"]) / DATASET / f"{trainer}__nnUNetPlans__3d_fullres" / "fold_0"
    if _must_train(fold_dir, out, minutes, args.iterations):
        _run(["nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", trainer, "-device", args.device], env)
    return fold_dir


def _predictions(args, env: Dict[str, str], raw: Path, trainer: str, out: Path) -> Path:
    """nnU-Net's predictions of the held-out cases into ``out/predictions`` (a previous run's are replaced only once
    the new ones are complete)."""
    from nnunet_dyntransnet.utilities.staging import staged_folder

    preds = out / "predictions"
    with staged_folder(preds, replace=[preds] if preds.exists() else [], tag="predicting") as staging:
        _run(["nnUNetv2_predict", "-i", str(raw / "imagesTs"), "-o", str(staging), "-d", str(DATASET_ID), "-c",
              "3d_fullres", "-f", "0", "-tr", trainer, "-device", args.device, "-npp", "1", "-nps", "1"], env)
    return preds


def _score_and_write(args, raw: Path, preds: Path, fold_dir: Path, trainer: str, out: Path, minutes: float,
                     started: float) -> None:
    """The threshold baseline, both methods' scores on the held-out cases, results.md / .json and the figures."""
    from nnunet_dyntransnet.evaluation.threshold_baseline import ThresholdBaseline, evaluate_cases, summarize

    _log("fitting the threshold baseline on the training cases and scoring the held-out cases")
    tr_cases = sorted(p.name[: -len(".nii.gz")] for p in (raw / "labelsTr").glob("*.nii.gz"))
    baseline = ThresholdBaseline.fit((_read(raw / "imagesTr" / f"{c}_0000.nii.gz") for c in tr_cases),
                                     (_read(raw / "labelsTr" / f"{c}.nii.gz") for c in tr_cases))
    ts_cases = sorted(p.name[: -len(".nii.gz")] for p in (raw / "labelsTs").glob("*.nii.gz"))
    truths = {c: _read(raw / "labelsTs" / f"{c}.nii.gz") for c in ts_cases}
    net_rows = evaluate_cases((c, _read(preds / f"{c}.nii.gz"), truths[c]) for c in ts_cases)
    base_rows = evaluate_cases((c, baseline.predict(_read(raw / "imagesTs" / f"{c}_0000.nii.gz")), truths[c])
                               for c in ts_cases)
    times, steps = _trained(fold_dir, args.iterations)
    training = _training_summary(times, args.iterations, minutes, args.device, steps)
    results = {"DynTransNet": summarize(net_rows), "threshold baseline": summarize(base_rows),
               "per_case": {"DynTransNet": net_rows, "threshold baseline": base_rows},
               "baseline_intervals": baseline.intervals, **training,
               "device": args.device, "minutes_total": (time.time() - started) / 60}
    table = _table(results)
    note = (f"{len(ts_cases)} held-out phantom cases; whole liver = labels 1+2, tumor = label 2; means over cases, "
            f"a case with no tumor in truth and prediction has no tumor Dice and is left out of that mean.")
    about = _about(args, trainer, started)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(f"# dyntransnet_demo\n\n{about}\n\n{training['summary']}\n\n{table}\n\n{note}\n")
    overlays = _overlays(out, ts_cases[:3], raw / "imagesTs", raw / "labelsTs", preds, baseline)
    _progress_figure(fold_dir, trainer, out / "training_progress.png", training)
    print("\n" + training["summary"] + "\n\n" + table + "\n\n" + note)
    _log(f"done in {(time.time() - started) / 60:.1f} minutes; results.md, results.json, overlays/ "
         f"({len(overlays)} PNGs) and training_progress.png are in {out}")


if __name__ == "__main__":
    sys.exit(main())
