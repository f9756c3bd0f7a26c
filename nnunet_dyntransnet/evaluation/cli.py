"""``dyntransnet_report RESULTS... [--out DIR] [--baseline NAME]``: one report for several trainers.

Writes, into ``--out`` (default ``./dyntransnet_report``):

* ``report.md``: tables in the layout of the paper's Tables 2 to 5, every metric with its
  statistics, how empty labels count, Dice per fold, and the figures;
* ``metrics_per_case.csv``: one row per trainer, case and class;
* ``summary.json``: the per-case values, every statistic and the text's title, context and figure names:
  report.md is rendered from it (``tables.report_from_summary``), so a kept summary re-renders its report;
* ``figures/``: Dice box plots, training curves per trainer, best / median / worst overlays.

``--scored TRAINER=REPORT`` adds a row of an earlier report, paired by case with this run's (``scored_rows.py``): a
new variant compared with trainings whose result folders are gone.

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
from typing import List, Optional, Sequence

from nnunet_dyntransnet.evaluation.metrics import metric_names, scored_classes

__all__ = ["main", "build_report"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dyntransnet_report", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("results", nargs="+", metavar="[NAME=]RESULTS",
                   help="nnU-Net trainer folders (Trainer__Plans__Config, all folds found), fold_N folders, or "
                        "folders of predictions (with --labels); a folder whose name holds '=' is passed as ./x=y")
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
    p.add_argument("--overwrite", action="store_true",
                   help="replace a previous report in --out (never a folder that holds anything else, nor an input)")
    p.add_argument("--benchmark", type=Path, default=None, metavar="JSON",
                   help="a dyntransnet_benchmark --out JSON: adds parameters, training step and peak memory (ratios "
                        "against nnU-Net's U-Net) to the Tables 4/5 layout")
    p.add_argument("--scored", action="append", default=[], metavar="TRAINER=REPORT",
                   help="also report TRAINER's row of an earlier dyntransnet_report (its folder or summary.json), "
                        "paired by case with these results: its per-case values over the cases scored here, refused "
                        "if its reference voxel counts differ (repeatable; listed before the RESULTS)")
    p.add_argument("--chill", action="store_true",
                   help="score a partial folder instead of failing when expected cases have no prediction (as "
                        "nnUNetv2_evaluate_folder's --chill); the report lists how many are missing")
    return p


def _write_csv(scores, folds, path: Path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        names = metric_names()
        w.writerow(["trainer", "fold", "case", "class", *names, "n_ref", "n_pred"])
        for trainer, per_case in scores.items():
            for case, classes in sorted(per_case.items()):
                for cls in scored_classes(per_case):
                    m = classes[cls]
                    w.writerow([trainer, folds[trainer][case], case, cls] +
                               ["" if m.get(k) is None else f"{m[k]:.6g}" for k in names] + [m["n_ref"], m["n_pred"]])


def read_costs(path: Path, results):
    """``{trainer: benchmark row}`` for the trainers whose network the benchmark JSON measured, and its source line.

    Raises:
        ReportError: unreadable JSON, not a benchmark result, none of ``results``' trainers trains a measured
            network, or a trainer's plan (configuration's patch, from its plans.json) is not the measured patch.
    """
    from nnunet_dyntransnet.benchmark.networks import network_of_trainer
    from nnunet_dyntransnet.evaluation.results import ReportError
    from nnunet_dyntransnet.trainer_search_path import find_trainer_class

    try:
        bench = json.loads(Path(path).read_text())
        rows = {r["network"]: r for r in bench["results"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ReportError(f"--benchmark {path}: not a dyntransnet_benchmark --out JSON ({type(e).__name__}: {e})") from None
    if bench.get("complete") is False:
        raise ReportError(f"--benchmark {path} is marked incomplete (\"complete\": false: a run stopped before its "
                          f"last round); run the benchmark to its end and pass that file")
    names = [r.name for r in results]
    measured = list(bench.get("patch_size", []))
    for r in results:
        widths = _planned_widths(r)
        if widths is not None and bench.get("features_per_stage") not in (None, widths[1]):
            raise ReportError(f"--benchmark {path} measured widths {bench['features_per_stage']}, but {r.name} trained "
                              f"{widths[0]} with widths {widths[1]}: another plan of the same patch, whose costs are "
                              f"not this training's. Benchmark this plan (dyntransnet_benchmark --plan "
                              f"TRAINER_FOLDER/plans.json -c {widths[0]})")
        plan = r.planned_patch()
        if plan is not None and measured and plan[1] != measured:
            raise ReportError(f"--benchmark {path} measured patch {'x'.join(map(str, measured))}, but {r.name} trained "
                              f"{plan[0]} with patch {'x'.join(map(str, plan[1]))}; its costs would not be this "
                              f"training's. Benchmark this plan "
                              f"(dyntransnet_benchmark --plan TRAINER_FOLDER/plans.json -c CONFIG, or --patch "
                              f"{'x'.join(map(str, plan[1]))})")
    costs = {}
    for name in names:
        cls = find_trainer_class(name)
        network = network_of_trainer(cls) if cls is not None else None
        if network in rows:
            costs[name] = {**rows[network], "network": network}
    if not costs:
        raise ReportError(f"--benchmark {path} measured {', '.join(rows)}, but none of this report's trainers "
                          f"({', '.join(names)}) trains one of those networks; pass the benchmark of these trainers")
    source = (f"{bench.get('device_name', '?')}, patch {'x'.join(map(str, bench.get('patch_size', [])))}, batch "
              f"{bench.get('batch_size', '?')}, {bench.get('dtype', '')}")
    return costs, source


def _planned_widths(result) -> Optional[tuple]:
    """(configuration, features_per_stage) of a trainer folder's plans.json, an inheriting configuration resolved as
    nnU-Net resolves it; None for a plain folder of predictions."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    trainer = result.path.parent if (result.path / "validation").is_dir() else result.path
    parts = trainer.name.split("__")
    try:
        manager = PlansManager(json.loads((trainer / "plans.json").read_text()))
        return parts[2], list(manager.get_configuration(parts[2]).network_arch_init_kwargs["features_per_stage"])
    except (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError):
        return None


def _scored(results, scored, processes: int):
    """``results`` scored case by case, after the earlier reports' ``scored`` rows matched to their cases ->
    ``{trainer: {case: metrics}}``, ``{trainer: {case: fold}}``, ``{trainer: [missing cases]}``."""
    from nnunet_dyntransnet.evaluation.results import score_cases
    from nnunet_dyntransnet.evaluation.scored_rows import matched_to_references

    fresh = {}
    for r in results:
        print(f"scoring {len(r.predictions)} cases of {r.name} against {r.labels}", flush=True)
        fresh[r.name] = score_cases(r, processes)
    scores, folds, missing = {}, {}, {}
    for row in scored:
        scores[row.name], folds[row.name], missing[row.name] = matched_to_references(row, fresh, results[0].classes)
    scores.update(fresh)
    folds.update({r.name: r.folds for r in results})
    missing.update({r.name: r.missing for r in results})
    return scores, folds, missing


def build_report(results, out: Path, baseline: Optional[str], images: Optional[Path], title: str,
                 processes: int = 1, costs=None, scored=()) -> Path:
    """Score, summarize and draw ``results`` (TrainerResult list) and the earlier reports' ``scored`` rows
    (:class:`~nnunet_dyntransnet.evaluation.scored_rows.ScoredRow`, listed first) into the (new) folder ``out``;
    returns report.md."""
    from nnunet_dyntransnet.evaluation import figures
    from nnunet_dyntransnet.evaluation.results import ReportError, describe_classes
    from nnunet_dyntransnet.evaluation.tables import anchor_metrics, report_from_summary, trainer_statistics

    names = [r.name for r in scored] + [r.name for r in results]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ReportError(f"two rows are named {twice[0]}; name this run's result apart with NAME=PATH")
    baseline = baseline or names[0]
    if baseline not in names:
        raise ReportError(f"--baseline {baseline} is none of the results ({', '.join(names)})")
    scores, folds, missing = _scored(results, scored, processes)
    stats = trainer_statistics(scores, baseline if len(names) > 1 else None)
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
        f"Classes (from dataset.json; labels 0/1/2 = background/liver/tumor without one): "
        f"{describe_classes(results[0].classes)}. Dice, precision and recall as in "
        "the paper (section 4.2), in percent; HD95 and ASD (average symmetric surface distance) in mm at each "
        "case's own voxel spacing.",
        (f"Baseline for the p-values: {baseline}. Tests are paired by case: a trainer and the baseline are compared "
         f"over the cases both predicted and for which both have the metric defined (n pairs)." if len(names) > 1
         else "One result, so no p-values (they compare a trainer with a baseline)."),
    ]
    if scored:
        context.append("Scored in an earlier report (per-case values over this report's cases, whose reference "
                       "voxel counts they match; no curves or overlays): " +
                       "; ".join(f"{row.name} from {row.source}" for row in scored) + ".")
    if any(missing.values()):
        context.append("Partial results (--chill): " + "; ".join(
            f"{name} has no prediction for {len(cases)} expected case(s) ({', '.join(cases[:5])}"
            f"{', ...' if len(cases) > 5 else ''})" for name, cases in missing.items() if cases) +
            ". Means and tests cover the predicted cases only.")
    anchors = {name: anchor_metrics(per_case) for name, per_case in scores.items()}
    costs, costs_source = costs or (None, "")
    summary = {"baseline": baseline, "classes": {k: list(v) for k, v in results[0].classes.items()},
               "results": {**{row.name: str(row.source) for row in scored}, **{r.name: str(r.path) for r in results}},
               "folds": folds, "missing": missing,
               "statistics": stats, "anchors": anchors, "costs": costs, "per_case": scores,
               "title": title, "context": context, "figures": figure_names, "costs_source": costs_source}
    text = json.dumps(summary, indent=1)
    (out / "summary.json").write_text(text)
    # rendered from the summary as written (JSON's lists and keys, not this run's tuples), so that report.md is
    # exactly what the committed summary.json renders to
    (out / "report.md").write_text(report_from_summary(json.loads(text)))
    _write_csv(scores, folds, out / "metrics_per_case.csv")
    return out / "report.md"


COMMAND = "dyntransnet_report"
REPORT_MARKER = f".{COMMAND}"  # lists every file of a report, so --overwrite knows what it may replace (ownership.py)


def check_out(out: Path, results, images: Optional[Path], overwrite: bool, scored=()) -> List[Path]:
    """Refuse an --out that would replace user data (:class:`~nnunet_dyntransnet.utilities.ownership.Claim`, with
    the report's inputs protected); returns what the report replaces."""
    from nnunet_dyntransnet.evaluation.results import ReportError
    from nnunet_dyntransnet.utilities.ownership import Claim

    inputs = [(p, f"read by this report ({r.name})") for r in [*results, *scored] for p in r.inputs()]
    if images:
        inputs.append((images, "read by this report (--images)"))
    claim = Claim(COMMAND, inputs, "--out", ReportError, datasets=[r.dataset for r in results if r.dataset])
    return claim.folder(out, overwrite)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from nnunet_dyntransnet.evaluation.results import ReportError, find_results
    from nnunet_dyntransnet.evaluation.scored_rows import read_scored_row
    from nnunet_dyntransnet.utilities.command import run_command
    from nnunet_dyntransnet.utilities.ownership import write_marker
    from nnunet_dyntransnet.utilities.staging import StagingError, remove_stale_staging, staged_folder

    args = _parser().parse_args(argv)
    out = args.out.resolve()

    def report() -> str:
        results = find_results(args.results, args.labels.resolve() if args.labels else None, args.chill)
        scored = [read_scored_row(spec) for spec in args.scored]
        costs = read_costs(args.benchmark, results) if args.benchmark else None
        remove_stale_staging(out, "report")  # first: it may put back a report an interrupted replace retired
        replace = check_out(out, results, args.images, args.overwrite, scored)
        with staged_folder(out, replace=replace, tag="report") as staging:
            build_report(results, staging, args.baseline, args.images, args.title, args.processes, costs, scored)
            write_marker(staging, COMMAND)
        return f"report written to {out / 'report.md'}"

    return run_command("dyntransnet_report", report, (ReportError, StagingError), "no report was written")


if __name__ == "__main__":
    sys.exit(main())
