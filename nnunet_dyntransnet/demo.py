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
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from nnunet_dyntransnet.evaluation import CLASSES

DATASET_ID = 990
DATASET = f"Dataset{DATASET_ID}_LiverPhantomCT"


def _log(message: str) -> None:
    print(f"[dyntransnet_demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _run(cmd: List[str], env: Dict[str, str]) -> None:
    _log("$ " + " ".join(cmd))
    exe = Path(sys.executable).parent / cmd[0]
    proc = subprocess.run([str(exe) if exe.exists() else cmd[0], *cmd[1:]], env=env)
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
    lines = ["| method | class | Dice | precision | recall |", "|---|---|---|---|---|"]
    for method in ("DynTransNet", "threshold baseline"):
        for cls in CLASSES:
            m = results[method][cls]
            fmt = [f"{m[k]:.3f}" if m[k] is not None else "n/a" for k in ("dice", "precision", "recall")]
            lines.append(f"| {method} | {cls} | " + " | ".join(fmt) + " |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="dyntransnet_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("dyntransnet_demo"), help="working folder (default ./dyntransnet_demo)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="training time budget (default: 8 on CPU, 15 on a GPU)")
    parser.add_argument("-n", type=int, default=32, help="phantom training cases (default 32)")
    parser.add_argument("--test", type=int, default=8, help="held-out phantom cases (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=50,
                        help="training iterations per epoch (default 50; fewer for a quick check that all runs)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    started = time.time()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    for var, sub in (("nnUNet_raw", "nnUNet_raw"), ("nnUNet_preprocessed", "nnUNet_preprocessed"),
                     ("nnUNet_results", "nnUNet_results")):
        if not env.get(var):
            env[var] = str(out / sub)
    # one augmentation worker beside the training process on a 2-core machine
    env.setdefault("nnUNet_n_proc_DA", str(max(1, min(8, (os.cpu_count() or 2) - 1))))
    # nnU-Net's default of 8 processes for validation export: each imports torch, slow on a small machine
    env.setdefault("nnUNet_def_n_proc", str(max(1, min(8, os.cpu_count() or 1))))
    os.environ.update({k: env[k] for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")})
    _log(f"nnUNet_raw={env['nnUNet_raw']} nnUNet_preprocessed={env['nnUNet_preprocessed']} "
         f"nnUNet_results={env['nnUNet_results']}")
    raw = Path(env["nnUNet_raw"]) / DATASET

    from nnunet_dyntransnet.evaluation import ThresholdBaseline, evaluate_cases, summarize
    from nnunet_dyntransnet.phantom import write_phantom_dataset
    from nnunet_dyntransnet.scheduling import epoch_times
    from nnunet_dyntransnet.staging import staged_folder

    if raw.is_dir():
        _log(f"reusing the phantom in {raw}")
    else:
        _log(f"writing the phantom ({args.n} training + {args.test} held-out cases)")
        write_phantom_dataset(DATASET_ID, args.n, args.test, "ct", args.seed)
    if not (Path(env["nnUNet_preprocessed"]) / DATASET / "nnUNetPlans.json").is_file():
        _run(["nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres", "-np", "2",
              "--verify_dataset_integrity"], env)
    trainer = "nnUNetTrainerDynTransNetDemoCPU" if args.device == "cpu" else "nnUNetTrainerDynTransNetDemoGPU"
    minutes = args.minutes if args.minutes is not None else (8.0 if args.device == "cpu" else 15.0)
    if args.iterations < 1:
        parser.error(f"--iterations must be at least 1, got {args.iterations}")
    env["DYNTRANSNET_DEMO_ITERATIONS"] = str(args.iterations)
    # the training runs for the budget (trainers/budget.py): as many epochs as fit, the schedule sized to them
    env["DYNTRANSNET_TRAIN_MINUTES"] = str(minutes)
    env["DYNTRANSNET_DEMO_EPOCHS"] = "1000"  # only a cap
    _log(f"training for {minutes:g} minutes (DYNTRANSNET_TRAIN_MINUTES), epochs of {args.iterations} steps")
    fold_dir = Path(env["nnUNet_results"]) / DATASET / f"{trainer}__nnUNetPlans__3d_fullres" / "fold_0"
    if (fold_dir / "checkpoint_final.pth").is_file():
        _log(f"reusing the trained model in {fold_dir} (delete it to train again)")
    else:
        _run(["nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", trainer, "-device", args.device], env)
    preds = out / "predictions"
    # a previous run's predictions are replaced only once the new ones are complete
    with staged_folder(preds, replace=[preds] if preds.exists() else [], tag="predicting") as staging:
        _run(["nnUNetv2_predict", "-i", str(raw / "imagesTs"), "-o", str(staging), "-d", str(DATASET_ID), "-c",
              "3d_fullres", "-f", "0", "-tr", trainer, "-device", args.device, "-npp", "1", "-nps", "1"], env)

    _log("fitting the threshold baseline on the training cases and scoring the held-out cases")
    tr_cases = sorted(p.name[: -len(".nii.gz")] for p in (raw / "labelsTr").glob("*.nii.gz"))
    baseline = ThresholdBaseline.fit((_read(raw / "imagesTr" / f"{c}_0000.nii.gz") for c in tr_cases),
                                     (_read(raw / "labelsTr" / f"{c}.nii.gz") for c in tr_cases))
    ts_cases = sorted(p.name[: -len(".nii.gz")] for p in (raw / "labelsTs").glob("*.nii.gz"))
    truths = {c: _read(raw / "labelsTs" / f"{c}.nii.gz") for c in ts_cases}
    net_rows = evaluate_cases((c, _read(preds / f"{c}.nii.gz"), truths[c]) for c in ts_cases)
    base_rows = evaluate_cases((c, baseline.predict(_read(raw / "imagesTs" / f"{c}_0000.nii.gz")), truths[c])
                               for c in ts_cases)
    results = {"DynTransNet": summarize(net_rows), "threshold baseline": summarize(base_rows),
               "per_case": {"DynTransNet": net_rows, "threshold baseline": base_rows},
               "baseline_intervals": baseline.intervals, "epochs": len(epoch_times(fold_dir)),
               "device": args.device, "minutes_total": (time.time() - started) / 60}
    table = _table(results)
    note = (f"{len(ts_cases)} held-out phantom cases; whole liver = labels 1+2, tumor = label 2; means over cases, "
            f"a case with no tumor in truth and prediction has no tumor Dice and is left out of that mean.")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(f"# dyntransnet_demo\n\n{table}\n\n{note}\n")
    overlays = _overlays(out, ts_cases[:3], raw / "imagesTs", raw / "labelsTs", preds, baseline)
    if (fold_dir / "progress.png").is_file():
        shutil.copy(fold_dir / "progress.png", out / "training_progress.png")
    print("\n" + table + "\n\n" + note)
    _log(f"done in {(time.time() - started) / 60:.1f} minutes; results.md, results.json, overlays/ "
         f"({len(overlays)} PNGs) and training_progress.png are in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
