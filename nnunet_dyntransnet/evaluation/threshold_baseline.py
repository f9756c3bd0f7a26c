"""The demo's intensity-threshold baseline segmenter, and the demo's scores of it and of the network.

The scores are the report's, for two of its classes (:data:`nnunet_dyntransnet.evaluation.metrics.REPORT_CLASSES`):
"whole liver" (labels 1 and 2, the LiTS challenge's "liver") and "tumor" (label 2); Dice, precision and
recall (the paper's section 4.2) come from the report's
:func:`~nnunet_dyntransnet.evaluation.metrics.overlap_metrics`, as fractions, and are shown in percent as
the report shows them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from nnunet_dyntransnet.evaluation.metrics import overlap_metrics, report_class_masks

__all__ = ["CLASSES", "OVERLAP", "ThresholdBaseline", "summarize", "evaluate_cases"]

CLASSES = ("whole liver", "tumor")  # of REPORT_CLASSES: what the LiTS challenge reports
OVERLAP = ("dice", "precision", "recall")


def summarize(per_case: Sequence[Dict[str, Dict[str, Optional[float]]]]) -> Dict[str, Dict[str, Optional[float]]]:
    """Mean over cases of each class and metric, skipping undefined values (e.g. no tumor in truth and prediction)."""
    out = {}
    for cls in CLASSES:
        out[cls] = {}
        for metric in OVERLAP:
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
                fg += np.histogram(im[report_class_masks(lb)[name]], edges)[0]
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
    """``(case_id, prediction, truth)`` label arrays -> per case, the report's overlap metrics per class (fractions;
    None where undefined)."""
    rows = []
    for case_id, pred, gt in pairs:
        pm, gm = report_class_masks(pred), report_class_masks(gt)
        rows.append({"case": case_id, **{c: {k: v for k, v in overlap_metrics(pm[c], gm[c]).items() if k in OVERLAP}
                                          for c in CLASSES}})
    return rows
