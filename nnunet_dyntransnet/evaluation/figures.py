"""PNG figures of the report: Dice box plots, training curves from nnU-Net's logs, case overlays.

Matplotlib runs with the non-interactive Agg backend, so the report works on a headless server.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from nnunet_dyntransnet.evaluation.metrics import LESION_CLASS, scored_classes
from nnunet_dyntransnet.evaluation.results import TrainerResult, read_label, read_training_log, read_volume
from nnunet_dyntransnet.evaluation.tables import values

__all__ = ["box_plots", "training_curves", "ranked_cases", "overlays"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def box_plots(scores: Dict[str, Dict[str, dict]], path: Path) -> Path:
    """One panel per class: the per-case Dice of every trainer, in percent (as the report's tables)."""
    plt = _pyplot()
    trainers = list(scores)
    classes = scored_classes(scores[trainers[0]])
    fig, axes = plt.subplots(1, len(classes), figsize=(4 + 1.2 * len(trainers) * len(classes), 4.5), squeeze=False)
    for ax, cls in zip(axes[0], classes):
        data = [[100.0 * v for v in values(scores[t], cls, "dice").values()] for t in trainers]
        ax.boxplot([d if d else [np.nan] for d in data], showmeans=True)
        ax.set_xticks(range(1, len(trainers) + 1), [t.replace("nnUNetTrainer", "") or t for t in trainers],
                      rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{cls} Dice (%)")
        ax.set_ylim(-2, 102)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def training_curves(result: TrainerResult, path: Path, note: str = "") -> Optional[Path]:
    """Loss (train and validation, each fold's two in colours of their own) and nnU-Net's pseudo Dice per epoch, one
    line per fold, ``note`` (if any) above them; None without logs."""
    logs = {fold: read_training_log(paths) for fold, paths in result.logs.items()}
    logs = {fold: epochs for fold, epochs in logs.items() if epochs}
    if not logs:
        return None
    plt = _pyplot()
    fig, (ax_loss, ax_dice) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (fold, epochs) in enumerate(sorted(logs.items())):
        color = f"C{(2 * i) % 10}"
        e = sorted(epochs)
        for j, (key, style) in enumerate((("train_loss", "-"), ("val_loss", "--"))):
            pts = [(k, epochs[k][key]) for k in e if key in epochs[k]]
            if pts:
                # markers: a training of one epoch is one point, which a line alone does not draw
                ax_loss.plot(*zip(*pts), style, marker="o", markersize=3, color=f"C{(2 * i + j) % 10}",
                             label=f"{fold} {key.replace('_', ' ')}")
        pts = [(k, float(np.mean(epochs[k]["pseudo_dice"]))) for k in e if epochs[k].get("pseudo_dice")]
        if pts:
            ax_dice.plot(*zip(*pts), marker="o", markersize=3, color=color, label=fold)
    ax_loss.set(xlabel="epoch", ylabel="loss", title=f"{result.name}: training and validation loss")
    ax_dice.set(xlabel="epoch", ylabel="pseudo Dice (mean over classes)", ylim=(0, 1),
                title="validation pseudo Dice (nnU-Net's log)")
    for ax in (ax_loss, ax_dice):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    if note:
        fig.suptitle(note, fontsize=9, color="darkred")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def ranked_cases(per_case: Dict[str, dict]) -> List[str]:
    """Cases from best to worst by the mean of their defined Dice values over the classes (ties: by case id)."""
    classes = scored_classes(per_case)

    def score(case):
        dice = [per_case[case][c]["dice"] for c in classes if per_case[case][c]["dice"] is not None]
        return float(np.mean(dice)) if dice else -1.0

    return sorted(per_case, key=lambda c: (-score(c), c))


# overlay colours of label values 1, 2, ... (then again from the first)
COLOURS = (("green", (0.1, 0.9, 0.2, 0.4)), ("red", (1.0, 0.1, 0.1, 0.6)), ("blue", (0.2, 0.4, 1.0, 0.5)),
           ("yellow", (1.0, 0.9, 0.1, 0.5)))


def _overlay(ax, image: np.ndarray, label: Optional[np.ndarray], title: str):
    lo, hi = np.percentile(image, [0.5, 99.5])
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
    if label is not None:
        rgba = np.zeros(label.shape + (4,))
        for value in np.unique(label[label > 0]):
            rgba[label == value] = COLOURS[(int(value) - 1) % len(COLOURS)][1]
        ax.imshow(rgba)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def overlays(result: TrainerResult, per_case: Dict[str, dict], images: Path, path: Path) -> Optional[Path]:
    """Image, ground truth and prediction of the best, median and worst case (as the paper's Figures 5 and 7).

    The slice shown (first array axis, axial for nnU-Net's usual volumes) is the one with the most
    tumor in the ground truth, else the most foreground. None if the images are not found.
    """
    ranked = ranked_cases(per_case)
    picks = {"best": ranked[0], "median": ranked[len(ranked) // 2], "worst": ranked[-1]}
    files = {c: images / f"{c}_0000{result.file_ending}" for c in picks.values()}
    if not all(f.is_file() for f in files.values()):
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(3, 3, figsize=(9, 9.5), squeeze=False)
    for row, (which, case) in enumerate(picks.items()):
        image = read_volume(files[case], np.float32)[0]
        truth = read_label(result.labels / f"{case}{result.file_ending}", result.label_values)[0]
        pred = read_label(result.predictions[case], result.label_values)[0]
        area = np.isin(truth, result.classes.get(LESION_CLASS, ())).reshape(truth.shape[0], -1).sum(1)
        if area.max() == 0:
            area = (truth >= 1).reshape(truth.shape[0], -1).sum(1)
        z = int(np.argmax(area))
        dice = ", ".join(f"{c} {100 * per_case[case][c]['dice']:.1f}" for c in scored_classes(per_case)
                         if per_case[case][c]["dice"] is not None)
        _overlay(axes[row, 0], image[z], None, f"{which}: {case}, slice {z}")
        _overlay(axes[row, 1], image[z], truth[z], "ground truth")
        # the Dice values on a line of their own: in the panel's width they were cut off at the right
        _overlay(axes[row, 2], image[z], pred[z], f"prediction\nDice (%): {dice}")
    legend = ", ".join(f"{COLOURS[(v[0] - 1) % len(COLOURS)][0]}: {name}" for name, v in result.classes.items()
                       if len(v) == 1)
    fig.suptitle(f"{result.name} ({legend})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
