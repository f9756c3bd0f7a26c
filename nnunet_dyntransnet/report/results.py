"""Find predictions, references and training logs in nnU-Net result folders, and score every case.

A RESULTS argument is ``[NAME=]PATH``, where PATH is one of

* a trainer folder ``$nnUNet_results/DatasetXXX_Name/Trainer__Plans__Config``: the
  validation predictions of every ``fold_*`` in it (a 5-fold cross-validation covers each
  training case once);
* one ``fold_N`` folder of it;
* any folder of predicted label files, scored against ``--labels``.

NAME defaults to the trainer (the part of the folder name before ``__``), else the folder name.
References come from ``--labels``, else nnU-Net's own copy of the training labels
(``$nnUNet_preprocessed/DatasetXXX_Name/gt_segmentations``), else ``$nnUNet_raw/.../labelsTr``.
"""
from __future__ import annotations

import json
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from nnunet_dyntransnet.report.metrics import case_metrics

__all__ = ["ReportError", "TrainerResult", "find_result", "find_results", "read_label", "read_volume", "score_cases",
           "read_training_log"]


class ReportError(ValueError):
    """Bad report input; the message names the path or value and what to do."""


@dataclass
class TrainerResult:
    name: str
    path: Path
    predictions: Dict[str, Path]           # case id -> predicted label file
    folds: Dict[str, str]                  # case id -> fold name ("fold_0"; "-" for a plain folder)
    labels: Path                           # folder of reference label files
    file_ending: str
    dataset: Optional[str] = None          # DatasetXXX_Name, when known
    logs: Dict[str, List[Path]] = field(default_factory=dict)  # fold name -> nnU-Net training logs


def _case_id(path: Path, ending: str) -> str:
    return path.name[: -len(ending)]


def _dataset_json_ending(*folders: Path) -> Optional[str]:
    for folder in folders:
        f = folder / "dataset.json"
        if f.is_file():
            return json.loads(f.read_text()).get("file_ending")
    return None


def _guess_ending(folder: Path) -> str:
    for ending in (".nii.gz", ".nii", ".nrrd", ".mha", ".tif", ".png"):
        if any(p.name.endswith(ending) for p in folder.iterdir() if p.is_file()):
            return ending
    raise ReportError(f"{folder} holds no label files (.nii.gz, .nii, .nrrd, .mha, ...); pass a folder of predictions")


def _default_labels(dataset: Optional[str]) -> Optional[Path]:
    if not dataset:
        return None
    candidates = []
    if os.environ.get("nnUNet_preprocessed"):
        candidates.append(Path(os.environ["nnUNet_preprocessed"]) / dataset / "gt_segmentations")
    if os.environ.get("nnUNet_raw"):
        candidates.append(Path(os.environ["nnUNet_raw"]) / dataset / "labelsTr")
    return next((c for c in candidates if c.is_dir()), None)


def find_result(spec: str, labels: Optional[Path] = None) -> TrainerResult:
    """One RESULTS argument -> TrainerResult (predictions, folds, references, logs)."""
    # NAME=PATH, where NAME has no path separator (so a bare path containing "=" stays a path)
    name, sep, path_text = spec.partition("=")
    if not sep or "/" in name or not name:
        name, path_text = "", spec
    path = Path(path_text).expanduser().resolve()
    if not path.is_dir():
        raise ReportError(f"{path_text}: no such folder; pass an nnU-Net trainer folder, a fold_N folder or a "
                          f"folder of predictions")
    if (path / "validation").is_dir():           # a fold folder
        fold_dirs, trainer_dir = [path], path.parent
    elif sorted(path.glob("fold_*/validation")):  # a trainer folder
        fold_dirs, trainer_dir = sorted(p.parent for p in path.glob("fold_*/validation")), path
    else:                                         # a folder of predictions
        fold_dirs, trainer_dir = [], None
    if trainer_dir is not None:
        dataset = trainer_dir.parent.name if trainer_dir.parent.name.startswith("Dataset") else None
        ending = _dataset_json_ending(trainer_dir) or _guess_ending(fold_dirs[0] / "validation")
        name = name or trainer_dir.name.split("__")[0]
        predictions, folds, logs = {}, {}, {}
        for fold_dir in fold_dirs:
            logs[fold_dir.name] = sorted(fold_dir.glob("training_log_*.txt"))
            for f in sorted((fold_dir / "validation").iterdir()):
                if not f.name.endswith(ending):
                    continue
                case = _case_id(f, ending)
                if case in predictions:
                    raise ReportError(f"case {case} is predicted in both {folds[case]} and {fold_dir.name} of {path}; "
                                      f"a cross-validation scores each case once (pass one fold folder instead)")
                predictions[case], folds[case] = f, fold_dir.name
        if not predictions:
            raise ReportError(f"{path}: the validation folders hold no {ending} files; did `nnUNetv2_train` finish "
                              f"(or run it with --val)?")
    else:
        dataset = None
        ending = _dataset_json_ending(path) or _guess_ending(path)
        name = name or path.name
        predictions = {_case_id(f, ending): f for f in sorted(path.iterdir()) if f.name.endswith(ending)}
        folds, logs = {c: "-" for c in predictions}, {}
    ref = labels or _default_labels(dataset)
    if ref is None:
        raise ReportError(f"{path}: no reference labels found; pass --labels DIR (for nnU-Net results, set "
                          f"nnUNet_preprocessed or nnUNet_raw so that gt_segmentations or labelsTr is found)")
    missing = [c for c in predictions if not (ref / f"{c}{ending}").is_file()]
    if missing:
        raise ReportError(f"{ref} has no reference for {len(missing)} predicted case(s) of {path}, e.g. "
                          f"{missing[0]}{ending}; pass the matching --labels folder")
    return TrainerResult(name, path, predictions, folds, ref, ending, dataset, logs)


def find_results(specs: Sequence[str], labels: Optional[Path] = None) -> List[TrainerResult]:
    results = [find_result(s, labels) for s in specs]
    names = [r.name for r in results]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ReportError(f"two results are named {dup[0]}; name them apart with NAME=PATH")
    return results


def read_volume(path: Path, dtype=np.int16) -> Tuple[np.ndarray, Tuple[float, ...], object]:
    """Image or label file -> (array in SimpleITK's axis order, spacing per array axis, SimpleITK image)."""
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise ReportError(f"cannot read {path}: {str(e).strip().splitlines()[-1]}") from None
    return sitk.GetArrayFromImage(image).astype(dtype), tuple(image.GetSpacing())[::-1], image


def read_label(path: Path) -> Tuple[np.ndarray, Tuple[float, ...], object]:
    return read_volume(path, np.int16)


def _score_one(args: Tuple[str, str, str]) -> Tuple[str, dict]:
    case, pred_path, ref_path = args
    pred, _, pred_img = read_label(Path(pred_path))
    ref, spacing, ref_img = read_label(Path(ref_path))
    if pred.shape != ref.shape or not np.allclose(pred_img.GetSpacing(), ref_img.GetSpacing(), rtol=1e-3):
        raise ReportError(f"{pred_path} (shape {pred.shape}, spacing {pred_img.GetSpacing()}) does not lie on the grid "
                          f"of its reference {ref_path} (shape {ref.shape}, spacing {ref_img.GetSpacing()})")
    return case, case_metrics(pred, ref, spacing)


def score_cases(result: TrainerResult, processes: int = 1) -> Dict[str, dict]:
    """case id -> ``{class: {metric: value}}`` for every prediction of ``result``."""
    jobs = [(c, str(p), str(result.labels / f"{c}{result.file_ending}")) for c, p in result.predictions.items()]
    if processes <= 1:
        return dict(map(_score_one, jobs))
    with ProcessPoolExecutor(processes) as pool:
        return dict(pool.map(_score_one, jobs))


_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan"


def read_training_log(paths: Sequence[Path]) -> Dict[int, dict]:
    """nnU-Net's ``training_log_*.txt`` files of one fold -> ``{epoch: {train_loss, val_loss, pseudo_dice}}``.

    nnU-Net writes, per epoch, ``Epoch N``, ``train_loss x``, ``val_loss x`` and ``Pseudo dice [..]``.
    A resumed run starts a new log; later files override earlier epochs.
    """
    epochs: Dict[int, dict] = {}
    for path in paths:
        epoch = None
        for line in path.read_text(errors="replace").splitlines():
            text = line.split(": ", 1)[1] if ": " in line else line
            if m := re.match(r"Epoch (\d+)\s*$", text):
                epoch = int(m.group(1))
                epochs[epoch] = {}
            elif epoch is None:
                continue
            elif m := re.match(rf"(train_loss|val_loss) ({_FLOAT})\s*$", text):
                epochs[epoch][m.group(1)] = float(m.group(2))
            elif text.startswith("Pseudo dice"):
                body = re.sub(r"np\.float\d+\(", "(", text[len("Pseudo dice"):])
                epochs[epoch]["pseudo_dice"] = [float(v) for v in re.findall(_FLOAT, body)]
    return {e: v for e, v in epochs.items() if v}
