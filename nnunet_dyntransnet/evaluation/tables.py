"""Statistics per trainer and the markdown report in the layout of the paper's Tables 2 to 5.

``scores`` throughout is ``{trainer: {case: {class: {metric: value or None}}}}`` (see
``metrics.case_metrics``). Dice, precision and recall are printed in percent, as in the paper;
HD95 and ASD in mm.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from nnunet_dyntransnet.evaluation.metrics import EXTRA_METRICS, LESION_SIZES_MM, UNION_CLASS, metric_names, scored_classes
from nnunet_dyntransnet.evaluation.stats import describe, paired_t_test, wilcoxon_signed_rank

__all__ = ["values", "paired_values", "trainer_statistics", "trainer_modules", "anchor_metrics", "markdown_report"]

PERCENT = {"dice", "precision", "recall"}


def _percent(metric: str) -> bool:
    return metric in PERCENT or (metric in EXTRA_METRICS and EXTRA_METRICS[metric].percent)


def _label(metric: str) -> str:
    return LABEL.get(metric) or EXTRA_METRICS[metric].label
LABEL = {"dice": "Dice", "precision": "Precision", "recall": "Recall", "hd95": "HD95 (mm)", "asd": "ASD (mm)"}


def values(per_case: Dict[str, dict], cls: str, metric: str) -> Dict[str, float]:
    """case -> value, for the cases where the metric is defined."""
    return {c: m[cls][metric] for c, m in per_case.items() if m[cls][metric] is not None}


def paired_values(a: Dict[str, dict], b: Dict[str, dict], cls: str, metric: str):
    """Cases scored by both trainers with the metric defined for both -> (cases, a values, b values)."""
    va, vb = values(a, cls, metric), values(b, cls, metric)
    cases = sorted(set(va) & set(vb))
    return cases, [va[c] for c in cases], [vb[c] for c in cases]


def trainer_statistics(scores: Dict[str, Dict[str, dict]], baseline: Optional[str]) -> Dict[str, dict]:
    """``{trainer: {class: {metric: {n, mean, sd, ci_low, ci_high, n_pairs, mean_difference, p_ttest, p_wilcoxon,
    undefined}}}}``. ``mean_difference`` is the mean of trainer minus baseline over the paired cases: where the two
    leave different cases undefined (Dice when truth and prediction are both empty), the difference of the two
    ``mean`` values compares different cases; this one does not."""
    out = {}
    for trainer, per_case in scores.items():
        out[trainer] = {}
        for cls in scored_classes(per_case):
            out[trainer][cls] = {}
            for metric in metric_names():
                vals = values(per_case, cls, metric)
                s = describe(list(vals.values()))
                entry = {"n": s.n, "mean": s.mean, "sd": s.sd, "ci_low": s.ci_low, "ci_high": s.ci_high,
                         "undefined": len(per_case) - s.n, "n_pairs": None, "mean_difference": None, "p_ttest": None,
                         "p_wilcoxon": None}
                if baseline is not None and trainer != baseline:
                    cases, a, b = paired_values(per_case, scores[baseline], cls, metric)
                    entry.update(n_pairs=len(cases), p_ttest=paired_t_test(a, b), p_wilcoxon=wilcoxon_signed_rank(a, b),
                                 mean_difference=float(np.mean(np.subtract(a, b))) if cases else None)
                out[trainer][cls][metric] = entry
    return out


def anchor_metrics(per_case: Dict[str, dict]) -> dict:
    """The numbers other papers report, from one trainer's per-case scores.

    * ``foreground_mean``: the mean over the dataset's classes (labels 1 and 2 for LiTS) of each class's
      mean Dice over the cases where it is defined: nnU-Net's ``foreground_mean`` (what
      ``nnUNetv2_evaluate_folder`` writes, and what nnU-Net Revisited reports for LiTS);
    * ``global_dice``: per class, Dice over all cases' voxels pooled (the LiTS challenge's "Dice global");
    * ``lesions``: tumor detection pooled over cases (precision, recall, F1 of matched lesions,
      recall per reference size class; matching in :func:`metrics.lesion_detection`); None when the
      dataset has no tumor class.
    """
    classes = scored_classes(per_case)
    label_means = [describe(list(values(per_case, cls, "dice").values())).mean for cls in classes if cls != UNION_CLASS]
    defined = [m for m in label_means if m is not None]
    out = {"foreground_mean": float(np.mean(defined)) if defined else None, "global_dice": {}, "lesions": None}
    for cls in classes:
        tp = sum(m[cls]["tp"] for m in per_case.values())
        total = sum(m[cls]["n_pred"] + m[cls]["n_ref"] for m in per_case.values())
        out["global_dice"][cls] = 2 * tp / total if total else None
    if not all("lesions" in m for m in per_case.values()):
        return out
    ref = sum(m["lesions"]["ref"] for m in per_case.values())
    pred = sum(m["lesions"]["pred"] for m in per_case.values())
    matched = sum(m["lesions"]["matched"] for m in per_case.values())
    precision, recall = (matched / pred if pred else None), (matched / ref if ref else None)
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if ref and pred else None)
    by_size = {size: [sum(m["lesions"]["by_size"][size][i] for m in per_case.values()) for i in (0, 1)]
               for size in LESION_SIZES_MM}
    out["lesions"] = {"ref": ref, "pred": pred, "matched": matched, "precision": precision, "recall": recall,
                      "f1": f1, "recall_by_size": {s: (d / n if n else None) for s, (d, n) in by_size.items()},
                      "ref_by_size": {s: n for s, (_, n) in by_size.items()}}
    return out


def trainer_modules(name: str) -> Optional[dict]:
    """D-MSA / fusion / RM of a DynTransNet trainer, read from its class's ``network_options``; None for trainers of
    other networks or of another recipe than the ablation rows share (``_Paper``)."""
    from nnunet_dyntransnet.network import network_defaults
    from nnunet_dyntransnet.trainer_search_path import find_trainer_class
    from nnunet_dyntransnet.trainers import nnUNetTrainerDynTransNet

    cls = find_trainer_class(name)
    if cls is None or not issubclass(cls, nnUNetTrainerDynTransNet):
        return None
    options = {**network_defaults(), **cls.network_options}
    return {"dmsa": options["attention"] == "dmsa", "fusion": options["fusion"], "rm": options["residual_refine"]}


def _fmt(entry: dict, metric: str, ci: bool = False, spread: bool = True) -> str:
    """``mean ± SD [CI low, CI high]`` of one statistics entry; ``spread=False`` gives the mean alone."""
    if entry["mean"] is None:
        return "n/a"
    k = 100.0 if _percent(metric) else 1.0
    text = f"{entry['mean'] * k:.2f}"
    if spread and entry["sd"] is not None:
        text += f" ± {entry['sd'] * k:.2f}"
        if ci:
            # brackets and a comma: "(-0.20-0.47)" reads as a range or a subtraction when a bound is negative;
            # the t interval of a few cases reaches outside what the metric can be: it is clipped to that range, and
            # the number of cases it rests on stands beside it
            upper = 1.0 if _percent(metric) else float("inf")
            low, high = max(entry["ci_low"], 0.0), min(entry["ci_high"], upper)
            n = f"; n={entry['n']}" if entry.get("n") is not None else ""
            text += f" [{low * k:.2f}, {high * k:.2f}{n}]"
    return text


def _p(value: Optional[float]) -> str:
    return "-" if value is None else ("<0.0001" if value < 1e-4 else f"{value:.4f}")


def _difference(value: Optional[float]) -> str:
    """A paired Dice difference in percentage points, signed."""
    return "-" if value is None else f"{100 * value:+.2f}"


def _cell(text: str) -> str:
    # a "|" in a trainer NAME would end the cell; markdown reads "\|" as the character
    return str(text).replace("|", "\\|")


def _table(header: Sequence[str], rows: List[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(_cell, r)) + " |" for r in rows])


FUSION_NAME = {"concat": "FM-M (simple concatenation)", "weighted_sum": "FM-M (weighted sum)",
               "feature_mix": "FM-M (proposed)"}


def markdown_report(scores, stats, baseline: Optional[str], folds: Dict[str, Dict[str, str]],
                    title: str, context: Sequence[str], figures: Sequence[str],
                    missing: Optional[Dict[str, Sequence[str]]] = None, anchors: Optional[Dict[str, dict]] = None,
                    costs: Optional[Dict[str, dict]] = None, costs_source: str = "") -> str:
    """The whole report.md. ``folds`` is ``{trainer: {case: fold}}``; ``context`` lines describe the data;
    ``missing`` is ``{trainer: expected cases without a prediction}`` (a --chill run); ``anchors`` is
    ``{trainer: anchor_metrics(...)}``; ``costs`` is ``{trainer: benchmark row}`` (from ``--benchmark``),
    ``costs_source`` says which benchmark run they come from. One function per section below."""
    trainers = list(scores)
    classes = scored_classes(scores[trainers[0]])
    modules = {t: trainer_modules(t) for t in trainers}
    out = [f"# {title}", ""] + list(context) + [""]
    out += _trainers_section(trainers, scores, folds, missing or {})
    out += _ablation_section(trainers, classes, modules, stats, baseline)
    out += _fusion_section(trainers, classes, modules, stats)
    out += _all_trainers_section(trainers, classes, stats, costs, costs_source)
    if anchors:
        out += _anchors_section(trainers, classes, anchors)
    out += _every_metric_section(trainers, classes, stats)
    out += _empty_section(trainers, classes, scores, stats)
    out += _per_fold_section(trainers, classes, scores, folds)
    if figures:
        out += ["## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    return "\n".join(out)


def report_from_summary(summary: Dict[str, Any]) -> str:
    """report.md rendered from the report's summary.json (as ``dyntransnet_report`` writes it: the per-case values,
    the statistics and what the text needs besides, ``title``, ``context``, ``figures``, ``costs_source``): the
    one way the command writes report.md, so that a committed report is its summary's rendering and can be checked
    against it."""
    baseline = summary["baseline"] if len(summary["per_case"]) > 1 else None
    return markdown_report(summary["per_case"], summary["statistics"], baseline, summary["folds"], summary["title"],
                           summary["context"], summary["figures"], summary["missing"], summary["anchors"],
                           summary["costs"], summary["costs_source"])


def _trainers_section(trainers, scores, folds, missing) -> List[str]:
    return ["## Trainers", "", _table(["trainer", "cases", "missing cases", "folds"], [
        [t, str(len(scores[t])), str(len(missing.get(t, ()))), ", ".join(sorted(set(folds[t].values())))]
        for t in trainers]), ""]


def _ablation_section(trainers, classes, modules, stats, baseline) -> List[str]:
    """The paper's Table 3: the DynTransNet rows with their modules ticked (weighted-sum fusion is Table 2's)."""
    ablation = [t for t in trainers if modules[t] is not None and modules[t]["fusion"] != "weighted_sum"]
    if not ablation:
        return []
    out = ["## Submodule ablation (layout of the paper's Table 3)", "",
           "Dice as mean ± SD [95% CI, clipped to 0-100; n cases]; "
           + (f"p-values of the paired t-test and Wilcoxon signed-rank test of Dice against {baseline}, over the "
              f"cases where both have a defined Dice. " if baseline else "no p-values (one result). ") +
           "\"FM-M -\" is simple concatenation.", ""]
    for cls in classes:
        rows = []
        for t in ablation:
            m, s = modules[t], stats[t][cls]
            rows.append([t, "✓" if m["dmsa"] else "-", "✓" if m["fusion"] == "feature_mix" else "-",
                         "✓" if m["rm"] else "-", _fmt(s["dice"], "dice", ci=True), _p(s["dice"]["p_ttest"]),
                         _p(s["dice"]["p_wilcoxon"]), _fmt(s["precision"], "precision"), _fmt(s["recall"], "recall")])
        out += [f"### {cls}", "", _table(["Model", "D-MSA", "FM-M", "RM", "Dice (± SD [95% CI])", "p (t-test)",
                                          "p (Wilcoxon)", "Precision", "Recall"], rows), ""]
    return out


def _fusion_section(trainers, classes, modules, stats) -> List[str]:
    """The paper's Table 2: D-MSA and RM rows that differ in their skip fusion."""
    fusion = [t for t in trainers if modules[t] is not None and modules[t]["dmsa"] and modules[t]["rm"]]
    if len({modules[t]["fusion"] for t in fusion}) <= 1:
        return []
    header = ["Model", "Module"] + [f"{cls} {LABEL[m]}" for cls in classes for m in ("dice", "precision", "recall")]
    rows = [[t, FUSION_NAME[modules[t]["fusion"]]] +
            [_fmt(stats[t][cls][m], m) for cls in classes for m in ("dice", "precision", "recall")] for t in fusion]
    return ["## Skip fusion (layout of the paper's Table 2)", "", "Mean ± SD over cases.", "", _table(header, rows), ""]


def _all_trainers_section(trainers, classes, stats, costs, costs_source) -> List[str]:
    """The paper's Tables 4 and 5, with the benchmark's cost columns when given."""
    header = ["Model name"] + [f"{cls} {LABEL[m]}" for cls in classes for m in ("dice", "precision", "recall")]
    rows = [[t] + [_fmt(stats[t][cls][m], m, spread=False) for cls in classes for m in ("dice", "precision", "recall")]
            for t in trainers]
    note = "Means over cases."
    if costs:
        header += ["network (benchmark)", "params (M)", "train step / U-Net", "peak memory / U-Net"]
        for t, row in zip(trainers, rows):
            c = costs.get(t) or {}
            row += [c.get("network", "-"), f"{c['parameters'] / 1e6:.1f}" if c.get("parameters") else "-",
                    f"{c['train_step_ratio']:.2f}" if c.get("train_step_ratio") else "-",
                    f"{c['peak_memory_ratio']:.2f}" if c.get("peak_memory_ratio") else "-"]
        note += (f" Cost columns: `dyntransnet_benchmark` ({costs_source}); ratios against nnU-Net's PlainConvUNet in "
                 f"the same run; '-': no benchmark row for that trainer's network.")
    return ["## All trainers (layout of the paper's Tables 4 and 5)", "", note, "", _table(header, rows), ""]


def _anchors_section(trainers, classes, anchors) -> List[str]:
    """The numbers other papers report (:func:`anchor_metrics`)."""
    sizes = list(LESION_SIZES_MM)
    rows = []
    for t in trainers:
        a, les = anchors[t], anchors[t]["lesions"]
        pct = lambda v: "n/a" if v is None else f"{100 * v:.2f}"  # noqa: E731
        lesion_cells = (["n/a (no tumor class)"] + ["n/a"] * (3 + len(sizes)) if les is None else
                        [f"{les['matched']}/{les['ref']}/{les['pred']}", pct(les["precision"]), pct(les["recall"]),
                         pct(les["f1"])] + [f"{pct(les['recall_by_size'][s])} (n={les['ref_by_size'][s]})"
                                            for s in sizes])
        rows.append([t, pct(a["foreground_mean"])] + [pct(a["global_dice"][c]) for c in classes] + lesion_cells)
    return ["## The anchors' numbers", "",
            f"`foreground_mean`: the mean of the dataset's classes' Dice "
            f"({', '.join(c for c in classes if c != UNION_CLASS)}), each averaged over the cases "
            "where it is defined: nnU-Net's `foreground_mean`, the LiTS number of nnU-Net Revisited. Global Dice: "
            "all cases' voxels pooled (the LiTS challenge's \"Dice global\"). Lesions: 26-connected tumor "
            "components; a reference and a predicted lesion match when their IoU exceeds 0.5 (one-to-one at that "
            "threshold); precision = matched / predicted, recall = matched / reference lesions, pooled over "
            "cases; sizes are equivalent-sphere diameters of the reference lesions.", "",
            _table(["trainer", "foreground_mean"] + [f"global Dice {c}" for c in classes] +
                   ["lesions matched/ref/pred", "lesion precision", "lesion recall", "lesion F1"] +
                   [f"recall {s}" for s in sizes], rows), ""]


def _every_metric_section(trainers, classes, stats) -> List[str]:
    rows = []
    for t in trainers:
        for cls in classes:
            s = stats[t][cls]
            rows.append([t, cls] + [_fmt(s[m], m, ci=True) for m in metric_names()] +
                        [_difference(s["dice"]["mean_difference"]), _p(s["dice"]["p_ttest"]),
                         _p(s["dice"]["p_wilcoxon"]), str(s["dice"]["n_pairs"] or "-")])
    return ["## Every metric", "",
            "Mean ± SD [95% CI; n cases] over the cases where the metric is defined (the interval clipped to the "
            "metric's range, 0-100% or from 0 mm: with few cases Student's t reaches beyond it); the paired difference "
            "(mean of trainer minus baseline) and the p-values compare Dice with the baseline over the paired cases "
            "(n pairs). Where the two leave different cases out (Dice when truth and prediction are both empty), the "
            "difference of their means compares different cases and the paired difference does not.", "",
            _table(["trainer", "class"] + [_label(m) for m in metric_names()] +
                   ["Δ Dice (paired)", "p Dice (t-test)", "p Dice (Wilcoxon)", "n pairs"], rows), ""]


def _empty_section(trainers, classes, scores, stats) -> List[str]:
    """How many cases left each metric undefined, and why."""
    rows = []
    for t in trainers:
        for cls in classes:
            per_case = scores[t]
            empty_ref = sum(1 for m in per_case.values() if m[cls]["n_ref"] == 0)
            empty_pred = sum(1 for m in per_case.values() if m[cls]["n_pred"] == 0)
            both = sum(1 for m in per_case.values() if m[cls]["n_ref"] == 0 and m[cls]["n_pred"] == 0)
            rows.append([t, cls, str(len(per_case)), str(empty_ref), str(empty_pred), str(both),
                         str(stats[t][cls]["dice"]["n"]), str(stats[t][cls]["hd95"]["n"])])
    return ["## Empty labels and predictions", "",
            "A metric whose formula divides by zero is left out of its mean, never counted as 0 or 1: Dice when truth "
            "and prediction are both empty, precision when the prediction is empty, recall when the truth is empty, "
            "HD95 and ASD when either is. A predicted tumor in a case without tumor gives Dice 0 and precision 0.", "",
            _table(["trainer", "class", "cases", "empty truth", "empty prediction", "both empty", "cases with Dice",
                    "cases with HD95/ASD"], rows), ""]


def _per_fold_section(trainers, classes, scores, folds) -> List[str]:
    rows = []
    for t in trainers:
        for fold in sorted(set(folds[t].values())):
            cases = {c: m for c, m in scores[t].items() if folds[t][c] == fold}
            cells = []
            for cls in classes:
                s = describe(list(values(cases, cls, "dice").values()))
                cells.append("n/a" if s.mean is None else f"{100 * s.mean:.2f}")
            rows.append([t, fold, str(len(cases))] + cells)
    return ["## Dice per fold", "", _table(["trainer", "fold", "cases"] + [f"{c} Dice" for c in classes], rows), ""]
