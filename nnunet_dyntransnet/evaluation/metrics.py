"""Per-case segmentation metrics for liver and tumor, at the image's own voxel spacing.

The classes are the dataset's (:func:`report_classes`, from dataset.json's ``labels``), the ones
``nnUNetv2_evaluate_folder`` scores: every foreground label, or every region of a region dataset,
under its dataset.json name. Without a dataset.json, LiTS and ATLAS label maps (0 background,
1 liver, 2 tumor) are assumed. Where the dataset names ``liver`` and ``tumor`` as two labels, the
report adds ``whole liver``: both together (the LiTS challenge's "liver").

Overlap metrics are the paper's (section 4.2), on binary masks P (prediction) and G (truth):
Dice ``2|P∩G| / (|P|+|G|)``, precision ``|P∩G| / |P|``, recall ``|P∩G| / |G|``.
Surface metrics, in mm, use the surface voxels of P and G (voxels of the mask with a
6-neighbour outside it) and the Euclidean distance from each to the other surface:
HD95 is the 95th percentile of all those distances pooled from both sides, ASD (average
symmetric surface distance, as the LiTS challenge defines it) their mean.

Empty masks: a metric whose formula divides by zero is *undefined* and stored as None,
never silently as 0 or 1. Dice is undefined only when both P and G are empty; precision
when P is empty; recall when G is empty; HD95 and ASD when either is empty. A case with no
tumor in the truth and some predicted tumor therefore has tumor Dice 0 and precision 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

__all__ = ["REPORT_CLASSES", "UNION_CLASS", "LESION_CLASS", "METRICS", "Metric", "EXTRA_METRICS", "register_metric",
           "metric_names", "LESION_SIZES_MM", "report_classes",
           "report_class_masks", "overlap_metrics", "surface_distances", "surface_metrics", "lesion_detection",
           "case_metrics", "scored_classes"]

# name -> labels that make up the class: the classes of a dataset without dataset.json (LiTS and ATLAS labels)
REPORT_CLASSES: Dict[str, tuple] = {"liver": (1,), "tumor": (2,), "whole liver": (1, 2)}
UNION_CLASS = "whole liver"  # added by the report, not declared by the dataset: nnU-Net's foreground_mean leaves it out
LESION_CLASS = "tumor"       # the class whose connected components are lesions (lesion_detection)
METRICS = ("dice", "precision", "recall", "hd95", "asd")  # the built-in metrics, in the tables' order


@dataclass(frozen=True)
class Metric:
    """A per-case metric the report adds to its tables, CSV and statistics (the contract of a new one).

    Attributes:
        name: its key in the per-case scores, the CSV and summary.json.
        label: its column heading (with the unit, e.g. ``"volume error (ml)"``).
        compute: (predicted mask, reference mask, spacing per array axis in mm) -> value, or None where the
            metric is undefined for that case (left out of its mean, never counted as 0).
        percent: a fraction in [0, 1] printed in percent (its confidence interval clipped to 0-100); else a
            non-negative quantity in its own unit.
    """

    name: str
    label: str
    compute: Callable[[np.ndarray, np.ndarray, Sequence[float]], Optional[float]]
    percent: bool = False


# name -> Metric: the metrics a report computes beside METRICS (register_metric)
EXTRA_METRICS: Dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to every report from now on (each class, each case); returns it."""
    if not isinstance(metric, Metric):
        raise TypeError(f"register_metric: {metric!r} is not a Metric (name, label, compute, percent)")
    if metric.name in METRICS or metric.name in ("n_pred", "n_ref", "tp"):
        raise ValueError(f"register_metric: {metric.name!r} is a built-in metric's or count's name; choose another")
    EXTRA_METRICS[metric.name] = metric
    return metric


def metric_names() -> Tuple[str, ...]:
    """Every metric a report computes: the built-in ones, then the registered ones."""
    return METRICS + tuple(EXTRA_METRICS)


def report_classes(labels: Optional[Dict[str, object]]) -> Dict[str, tuple]:
    """dataset.json's ``labels`` (name -> value, or list of values for a region) -> the report's classes.

    Every foreground entry is a class under its own name, as nnU-Net's evaluation scores it (so a declared
    class that a prediction never holds still scores 0 where the truth has it); ``whole liver`` is added where
    ``liver`` and ``tumor`` are two single labels. None (no dataset.json) gives :data:`REPORT_CLASSES`.
    """
    if labels is None:
        return dict(REPORT_CLASSES)
    classes = {}
    for name, value in labels.items():
        values = tuple(sorted(int(v) for v in (value if isinstance(value, (list, tuple)) else [value])))
        if values != (0,):
            classes[str(name)] = values
    liver, tumor = classes.get("liver", ()), classes.get(LESION_CLASS, ())
    if len(liver) == 1 and len(tumor) == 1 and UNION_CLASS not in classes:
        classes[UNION_CLASS] = tuple(sorted(liver + tumor))
    return classes


def report_class_masks(label: np.ndarray, classes: Dict[str, tuple] = REPORT_CLASSES) -> Dict[str, np.ndarray]:
    """Label map (any shape) -> one boolean mask per class (name -> label values)."""
    return {name: np.isin(label, labels) for name, labels in classes.items()}


def overlap_metrics(pred: np.ndarray, gt: np.ndarray) -> Dict[str, Optional[float]]:
    """Dice, precision, recall of two boolean masks (None where the denominator is 0), and the voxel counts."""
    tp = int(np.count_nonzero(pred & gt))
    p, g = int(np.count_nonzero(pred)), int(np.count_nonzero(gt))
    return {
        "dice": 2 * tp / (p + g) if p + g else None,
        "precision": tp / p if p else None,
        "recall": tp / g if g else None,
        "n_pred": p, "n_ref": g, "tp": tp,
    }


def _surface(mask: np.ndarray) -> np.ndarray:
    # a voxel outside the array counts as background, so masks touching the border keep that face
    eroded = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(mask.ndim, 1), border_value=0)
    return mask & ~eroded


def surface_distances(a: np.ndarray, b: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Distances (mm) from every surface voxel of ``a`` to the surface of ``b``, then from ``b``'s to ``a``'s.

    ``a`` and ``b`` are non-empty boolean masks of one shape; ``spacing`` is the voxel size per
    array axis. Both are cropped to the bounding box of their union first: every surface voxel
    lies inside it, so the distances are exact and large CT volumes stay cheap.
    """
    union = a | b
    box = tuple(slice(int(idx.min()), int(idx.max()) + 1) for idx in np.nonzero(union))
    a, b = a[box], b[box]
    sa, sb = _surface(a), _surface(b)
    to_b = ndimage.distance_transform_edt(~sb, sampling=spacing)
    to_a = ndimage.distance_transform_edt(~sa, sampling=spacing)
    return np.concatenate([to_b[sa], to_a[sb]])


def surface_metrics(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]) -> Dict[str, Optional[float]]:
    """HD95 and ASD in mm; both None if either mask is empty."""
    if not pred.any() or not gt.any():
        return {"hd95": None, "asd": None}
    d = surface_distances(pred, gt, spacing)
    return {"hd95": float(np.percentile(d, 95)), "asd": float(d.mean())}


# reference lesions by equivalent-sphere diameter (mm): upper bounds of the size classes
LESION_SIZES_MM = {"< 10 mm": 10.0, "10-20 mm": 20.0, "> 20 mm": float("inf")}


def lesion_detection(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]) -> Dict[str, object]:
    """Lesion-wise tumor detection in one case: 26-connected components of two boolean masks, matched by IoU > 0.5.

    A reference lesion and a predicted lesion match when their intersection over union exceeds
    0.5. With that threshold a lesion can match at most one lesion of the other mask (more than
    half of it lies in its partner), so the matching is one-to-one without an assignment step.
    Reference lesions are sized by the diameter of the sphere of their volume.

    Returns:
        ``{"ref": n reference lesions, "pred": n predicted, "matched": n matched pairs,
        "by_size": {size class: [detected, total]}}``.
    """
    structure = np.ones((3,) * gt.ndim, bool)
    ref_lab, n_ref = ndimage.label(gt, structure)
    pred_lab, n_pred = ndimage.label(pred, structure)
    ref_size = np.bincount(ref_lab.ravel(), minlength=n_ref + 1)
    pred_size = np.bincount(pred_lab.ravel(), minlength=n_pred + 1)
    both = (ref_lab > 0) & (pred_lab > 0)
    pairs = np.bincount(ref_lab[both].astype(np.int64) * (n_pred + 1) + pred_lab[both],
                        minlength=(n_ref + 1) * (n_pred + 1)).reshape(n_ref + 1, n_pred + 1)
    r, p = np.nonzero(pairs)
    inter = pairs[r, p]
    matched_ref = set(r[inter / (ref_size[r] + pred_size[p] - inter) > 0.5].tolist())
    voxel_ml = float(np.prod(spacing))
    by_size = {name: [0, 0] for name in LESION_SIZES_MM}
    for lesion in range(1, n_ref + 1):
        diameter = (6 * ref_size[lesion] * voxel_ml / np.pi) ** (1 / 3)
        name = next(k for k, upper in LESION_SIZES_MM.items() if diameter < upper)
        by_size[name][1] += 1
        by_size[name][0] += lesion in matched_ref
    return {"ref": int(n_ref), "pred": int(n_pred), "matched": len(matched_ref), "by_size": by_size}


def case_metrics(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float],
                 classes: Dict[str, tuple] = REPORT_CLASSES) -> Dict[str, Dict[str, Optional[float]]]:
    """Two label maps of one shape and their spacing per array axis -> ``{class: {metric: value}}`` for every
    class of ``classes`` (see :func:`report_classes`), and, where a class is named ``tumor``, ``"lesions"``: its
    lesion-wise detection (:func:`lesion_detection`)."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from the reference shape {gt.shape}")
    pm, gm = report_class_masks(pred, classes), report_class_masks(gt, classes)
    out = {c: {**overlap_metrics(pm[c], gm[c]), **surface_metrics(pm[c], gm[c], spacing),
               **{name: m.compute(pm[c], gm[c], spacing) for name, m in EXTRA_METRICS.items()}} for c in classes}
    if LESION_CLASS in classes:
        out["lesions"] = lesion_detection(pm[LESION_CLASS], gm[LESION_CLASS], spacing)
    return out


def scored_classes(per_case: Dict[str, dict]) -> list:
    """The class names of one trainer's per-case scores (``{case: case_metrics(...)}``), in scoring order."""
    first = next(iter(per_case.values()), {})
    return [c for c in first if c != "lesions"]
