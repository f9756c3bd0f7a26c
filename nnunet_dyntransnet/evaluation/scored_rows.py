"""Rows scored in an earlier report, compared again without their predictions.

``dyntransnet_report NEW_RESULTS --scored TRAINER=EARLIER_REPORT`` takes ``TRAINER``'s per-case values from the
earlier report's ``summary.json`` (which keeps every case's metrics) and reports them beside this run's, paired by
case. That is how a new variant is compared with trainings whose result folders are gone (a cross-validation of a
baseline kept only as its committed report), without training them again.

A row is only comparable if it was scored against the same references. So the row keeps the cases this report
scores (a report compares the same cases) and is refused when, for any of them, its reference voxel counts per
class (``n_ref``) differ from this report's references, or when it scored other classes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

from nnunet_dyntransnet.evaluation.results import ReportError, describe_classes, split_name

__all__ = ["ScoredRow", "read_scored_row", "matched_to_references"]


@dataclass
class ScoredRow:
    name: str                        # the trainer, as the earlier report named it
    source: Path                     # the earlier report's summary.json
    per_case: Dict[str, dict]        # case id -> {class: {metric: value}}, as score_cases returns them
    folds: Dict[str, str]            # case id -> fold name
    classes: Dict[str, tuple]        # class name -> label values scored

    def inputs(self) -> List[Path]:
        """What this row reads (the earlier report's folder), which the report must never replace."""
        return [self.source.parent]


def read_scored_row(spec: str) -> ScoredRow:
    """``TRAINER=PATH`` (PATH: an earlier report's folder or its summary.json) -> that trainer's row."""
    name, path_text = split_name(spec)
    if not name:
        raise ReportError(f"--scored {spec}: give TRAINER=REPORT (a trainer of an earlier dyntransnet_report and that "
                          f"report's folder or summary.json)")
    path = Path(path_text).expanduser().resolve()
    summary_file = path / "summary.json" if path.is_dir() else path
    try:
        summary = json.loads(summary_file.read_text())
        rows, folds, classes = summary["per_case"], summary["folds"], summary["classes"]
    except OSError as e:
        raise ReportError(f"--scored {spec}: cannot read {summary_file} ({e.strerror}); pass the folder of an earlier "
                          f"dyntransnet_report or its summary.json") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ReportError(f"--scored {spec}: {summary_file} is not a dyntransnet_report summary.json "
                          f"({type(e).__name__}: {e})") from None
    if name not in rows:
        raise ReportError(f"--scored {spec}: {summary_file} has no row {name}; its rows are {', '.join(rows)}")
    return ScoredRow(name, summary_file, rows[name], folds[name], {k: tuple(v) for k, v in classes.items()})


def matched_to_references(row: ScoredRow, scores: Dict[str, Dict[str, dict]], classes: Dict[str, tuple]):
    """The row restricted to the cases of ``scores`` (this report's freshly scored rows, ``{trainer: {case:
    {class: metrics}}}``) -> (per_case, folds, missing cases).

    Raises:
        ReportError: the row scored other classes, or a case's reference voxel count of a class differs from this
            report's (another dataset, another label file, another spacing of the references).
    """
    if row.classes != {k: tuple(v) for k, v in classes.items()}:
        raise ReportError(f"--scored {row.name}={row.source}: it scored {describe_classes(row.classes)}, this report "
                          f"scores {describe_classes(classes)}; a report compares the same classes")
    fresh: Dict[str, dict] = {}
    for per_case in scores.values():
        for case, metrics in per_case.items():
            fresh.setdefault(case, metrics)
    kept, missing = {}, []
    for case in sorted(fresh):
        if case not in row.per_case:
            missing.append(case)
            continue
        for cls in classes:
            theirs, ours = row.per_case[case][cls]["n_ref"], fresh[case][cls]["n_ref"]
            if theirs != ours:
                raise ReportError(f"--scored {row.name}={row.source}: case {case} has {theirs} reference voxels of "
                                  f"{cls} there and {ours} in this report's references; that report was scored "
                                  f"against other labels, so its cases cannot be paired with these. Pass a report "
                                  f"of the same dataset and references")
        kept[case] = row.per_case[case]
    if not kept:
        raise ReportError(f"--scored {row.name}={row.source}: it scored none of this report's {len(fresh)} cases "
                          f"(e.g. {next(iter(sorted(fresh)))}); pass a report of the same dataset")
    return kept, {c: row.folds[c] for c in kept}, missing
