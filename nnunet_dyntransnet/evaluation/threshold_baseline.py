"""Overlap metrics for the demo's two classes, and an intensity-threshold baseline segmenter.

The classes are the report's (:data:`nnunet_dyntransnet.evaluation.metrics.REPORT_CLASSES`, one
table for both): "whole liver" (labels 1 and 2, the LiTS challenge's "liver") and "tumor"
(label 2). Dice, precision and recall are the paper's (section 4.2), computed by the report's
:func:`~nnunet_dyntransnet.evaluation.metrics.overlap_metrics`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from nnunet_dyntransnet.evaluation.metrics import overlap_metrics, report_class_masks

__all__ = ["CLASSES", "class_masks", "overlap", "ThresholdBaseline", "summarize", "evaluate_cases"]

CLASSES = ("whole liver", "tumor")  # of REPORT_CLASSES: what the LiTS challenge reports


def class_masks(label: np.ndarray) -> Dict[str, np.ndarray]:
    """``{"whole liver": label in (1, 2), "tumor": label == 2}``."""
    masks = report_class_masks(label)
    return {c: masks[c] for c in CLASSES}


def overlap(pred: np.ndarray, gt: np.ndarray) -> Dict[str, Optional[float]]:
    """Dice, precision, recall of two boolean masks; a metric whose denominator is 0 is None (undefined)."""
    m = overlap_metrics(pred, gt)
    return {k: m[k] for k in ("dice", "precision", "recall")}


def summarize(per_case: Sequence[Dict[str, Dict[str, Optional[float]]]]) -> Dict[str, Dict[str, Optional[float]]]:
    """Mean over cases of each class and metric, skipping undefined values (e.g. no tumor in truth and prediction)."""
    out = {}
    for cls in CLASSES:
        out[cls] = {}
        for metric in ("dice", "precision", "recall"):
            values = [c[cls][metric] for c in per_case if c[cls][metric] is not None]
            out[cls][metric] = float(np.mean(values)) if values else None
            out[cls][f"{metric}_n"] = len(values)
    return out


@dataclass
class ThresholdBaseline:
    """Per class, the intensity interval ``[low, high]`` with the best Dice on the training cases.

    A voxel is tumor if its intensity lies in the tumor interval, else liver if it lies in the
    liver interval. Dice is pooled over all training voxels (one histogram per class).
    """

    intervals: Dict[str, Tuple[float, float]]

    @classmethod
    def fit(cls, images: Iterable[np.ndarray], labels: Iterable[np.ndarray], bins: int = 160) -> "ThresholdBaseline":
        images, labels = list(images), list(labels)
        values = np.concatenate([im[lb >= 1].ravel() for im, lb in zip(images, labels)] or [np.zeros(1)])
        lo, hi = np.percentile(values, [0.1, 99.9])
        margin = (hi - lo) * 0.5
        edges = np.linspace(lo - margin, hi + margin, bins + 1)
        intervals = {}
        for name in CLASSES:
            fg = np.zeros(bins)
            everything = np.zeros(bins)
            for im, lb in zip(images, labels):
                fg += np.histogram(im[class_masks(lb)[name]], edges)[0]
                everything += np.histogram(im, edges)[0]
            cfg, call = np.concatenate([[0], np.cumsum(fg)]), np.concatenate([[0], np.cumsum(everything)])
            a, b = np.triu_indices(bins + 1, k=1)  # interval = bins a .. b-1
            tp, pred = cfg[b] - cfg[a], call[b] - call[a]
            dice = 2 * tp / np.maximum(pred + fg.sum(), 1)
            best = int(np.argmax(dice))
            intervals[name] = (float(edges[a[best]]), float(edges[b[best]]))
        return cls(intervals)

    def predict(self, image: np.ndarray) -> np.ndarray:
        label = np.zeros(image.shape, np.uint8)
        lo, hi = self.intervals["whole liver"]
        label[(image >= lo) & (image < hi)] = 1
        lo, hi = self.intervals["tumor"]
        label[(image >= lo) & (image < hi)] = 2
        return label


def evaluate_cases(pairs: Iterable[Tuple[str, np.ndarray, np.ndarray]]) -> List[Dict]:
    """``(case_id, prediction, truth)`` label arrays -> per-case metrics per class."""
    rows = []
    for case_id, pred, gt in pairs:
        pm, gm = class_masks(pred), class_masks(gt)
        rows.append({"case": case_id, **{c: overlap(pm[c], gm[c]) for c in CLASSES}})
    return rows
