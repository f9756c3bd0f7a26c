"""``dyntransnet_report RESULTS... [--out DIR] [--baseline NAME]``: one report for several trainers.

Writes, into ``--out`` (default ``./dyntransnet_report``):

* ``report.md``: tables in the layout of the paper's Tables 2 to 5, every metric with its
  statistics, how empty labels count, Dice per fold, and the figures;
* ``metrics_per_case.csv``: one row per trainer, case and class;
* ``summary.json``: the per-case values and every statistic;
* ``figures/``: Dice box plots, training curves per trainer, best / median / worst overlays.

The folder is written beside the target and renamed into place at the end, so a failed run
leaves nothing behind; an existing report is replaced only with ``--overwrite``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from nnunet_dyntransnet.report.metrics import METRICS, REPORT_CLASSES

__all__ = ["main", "build_report"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dyntransnet_report", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("results", nargs="+", metavar="[NAME=]RESULTS",
                   help="nnU-Net trainer folders (Trainer__Plans__Config, all folds found), fold_N folders, or "
                        "folders of predictions (with --labels)")
    p.add_argument("--out", type=Path, default=Path("dyntransnet_report"), help="output folder (default ./dyntransnet_report)")
    p.add_argument("--baseline", default=None,
                   help="the trainer the p-values compare against (default: the first RESULTS)")
    p.add_argument("--labels", type=Path, default=None,
                   help="reference labels (default: nnUNet_preprocessed/DatasetXXX/gt_segmentations, else "
                        "nnUNet_raw/DatasetXXX/labelsTr)")
    p.add_argument("--images", type=Path, default=None,
                   help="images for the overlays, named CASE_0000.ext (default: nnUNet_raw/DatasetXXX/imagesTr)")
    p.add_argument("--title", default="DynTransNet results")
    p.add_argument("-np", type=int, default=max(1, min(4, os.cpu_count() or 1)), dest="processes",
                   help="processes that score cases (default: min(4, CPUs))")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report in --out")
    return p


def _write_csv(scores, folds, path: Path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trainer", "fold", "case", "class", *METRICS, "n_ref", "n_pred"])
        for trainer, per_case in scores.items():
            for case, classes in sorted(per_case.items()):
                for cls in REPORT_CLASSES:
                    m = classes[cls]
                    w.writerow([trainer, folds[trainer][case], case, cls] +
                               ["" if m[k] is None else f"{m[k]:.6g}" for k in METRICS] + [m["n_ref"], m["n_pred"]])


def build_report(results, out: Path, baseline: Optional[str], images: Optional[Path], title: str,
                 processes: int = 1) -> Path:
    """Score, summarize and draw ``results`` (TrainerResult list) into the (new) folder ``out``; returns report.md."""
    from nnunet_dyntransnet.report import figures
    from nnunet_dyntransnet.report.results import ReportError, score_cases
    from nnunet_dyntransnet.report.tables import markdown_report, trainer_statistics

    names = [r.name for r in results]
    baseline = baseline or names[0]
    if baseline not in names:
        raise ReportError(f"--baseline {baseline} is none of the results ({', '.join(names)})")
    scores = {}
    for r in results:
        print(f"scoring {len(r.predictions)} cases of {r.name} against {r.labels}", flush=True)
        scores[r.name] = score_cases(r, processes)
    folds = {r.name: r.folds for r in results}
    stats = trainer_statistics(scores, baseline if len(results) > 1 else None)
    (out / "figures").mkdir(parents=True)
    made = [figures.box_plots(scores, out / "figures" / "dice_boxplots.png")]
    for r in results:
        made.append(figures.training_curves(r, out / "figures" / f"training_curves_{r.name}.png"))
        image_dir = images or (Path(os.environ["nnUNet_raw"]) / r.dataset / "imagesTr"
                               if r.dataset and os.environ.get("nnUNet_raw") else None)
        shown = figures.overlays(r, scores[r.name], image_dir, out / "figures" / f"overlays_{r.name}.png") \
            if image_dir is not None else None
        if shown is None:
            print(f"no overlays for {r.name}: images not found (pass --images DIR with CASE_0000 files)", flush=True)
        made.append(shown)
    figure_names = [str(p.relative_to(out)) for p in made if p is not None]
    all_cases = sorted(set().union(*(s.keys() for s in scores.values())))
    context = [
        f"{len(all_cases)} cases; references from {', '.join(sorted({str(r.labels) for r in results}))}.",
        "Classes: liver = label 1, tumor = label 2, whole liver = labels 1 and 2. Dice, precision and recall as in "
        "the paper (section 4.2), in percent; HD95 and ASD (average symmetric surface distance) in mm at each "
        "case's own voxel spacing.",
        f"Baseline for the p-values: {baseline}. Tests are paired by case: a trainer and the baseline are compared "
        f"over the cases both predicted and for which both have the metric defined (n pairs).",
    ]
    (out / "report.md").write_text(markdown_report(scores, stats, baseline if len(results) > 1 else None, folds,
                                                   title, context, figure_names))
    _write_csv(scores, folds, out / "metrics_per_case.csv")
    (out / "summary.json").write_text(json.dumps(
        {"baseline": baseline, "classes": {k: list(v) for k, v in REPORT_CLASSES.items()},
         "results": {r.name: str(r.path) for r in results}, "folds": folds, "statistics": stats,
         "per_case": scores}, indent=1))
    return out / "report.md"


def main(argv: Optional[Sequence[str]] = None) -> int:
    from nnunet_dyntransnet.report.results import ReportError, find_results
    from nnunet_dyntransnet.staging import staged_folder

    args = _parser().parse_args(argv)
    out = args.out.resolve()
    if out.exists() and not out.is_dir():
        print(f"dyntransnet_report: --out {out} is a file; pass a folder", file=sys.stderr)
        return 2
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        print(f"dyntransnet_report: {out} exists and is not empty; pass --overwrite to replace it, or another --out",
              file=sys.stderr)
        return 2
    try:
        with staged_folder(out, replace=[out] if out.exists() else [], tag="report") as staging:
            results = find_results(args.results, args.labels.resolve() if args.labels else None)
            build_report(results, staging, args.baseline, args.images, args.title, args.processes)
    except ReportError as e:
        print(f"dyntransnet_report: {e}", file=sys.stderr)
        return 2
    print(f"report written to {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
