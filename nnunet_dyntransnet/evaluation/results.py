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

from nnunet_dyntransnet.evaluation.metrics import REPORT_CLASSES, case_metrics, report_classes
from nnunet_dyntransnet.utilities.volume_io import IMAGE_ENDINGS, VolumeError, format_numbers, image_files, read_label_array

__all__ = ["ReportError", "TrainerResult", "find_result", "find_results", "read_label", "read_volume", "score_cases",
           "read_training_log", "split_name", "describe_classes"]


class ReportError(VolumeError):
    """Bad report input; the message names the path or value and what to do."""


DEFAULT_LABEL_VALUES = (0, 1, 2)  # background, liver, tumor, when no dataset.json says otherwise


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
    label_values: Tuple[int, ...] = DEFAULT_LABEL_VALUES  # values a label map may hold (dataset.json)
    missing: List[str] = field(default_factory=list)  # expected cases without a prediction (only with chill)
    classes: Dict[str, tuple] = field(default_factory=lambda: dict(REPORT_CLASSES))  # name -> label values scored

    def inputs(self) -> List[Path]:
        """Every folder this result reads, which the report must never replace."""
        trainer = self.path.parent if (self.path / "validation").is_dir() else self.path
        return [self.path, trainer, self.labels]

    def planned_patch(self) -> Optional[Tuple[str, List[int]]]:
        """(configuration, patch size) from the trainer folder's plans.json, or None for a plain folder."""
        trainer = self.path.parent if (self.path / "validation").is_dir() else self.path
        parts = trainer.name.split("__")
        try:
            plans = json.loads((trainer / "plans.json").read_text())
            return parts[2], list(plans["configurations"][parts[2]]["patch_size"])
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return None


def _case_id(path: Path, ending: str) -> str:
    return path.name[: -len(ending)]


def _dataset_json(*folders: Path) -> Optional[dict]:
    for folder in folders:
        f = folder / "dataset.json"
        if f.is_file():
            try:
                return json.loads(f.read_text())
            except json.JSONDecodeError as e:
                raise ReportError(f"{f}: not valid JSON ({e}); restore nnU-Net's dataset.json") from None
    return None


def _label_values(meta: Optional[dict]) -> Tuple[int, ...]:
    """Every integer label value dataset.json declares (regions list theirs), else 0, 1, 2."""
    if not meta or "labels" not in meta:
        return DEFAULT_LABEL_VALUES
    found = set()
    for v in meta["labels"].values():
        found.update(v if isinstance(v, (list, tuple)) else [v])
    return tuple(sorted(int(v) for v in found))


def _guess_ending(folder: Path) -> str:
    names = [p.name for p in folder.iterdir() if p.is_file()]
    for ending in IMAGE_ENDINGS:
        if any(n.endswith(ending) for n in names):
            return ending
    raise ReportError(f"{folder} holds no label files ({', '.join(IMAGE_ENDINGS)}); pass a folder of predictions")


def _label_files(folder: Path, ending: str) -> List[Path]:
    return image_files(folder, ending, ReportError)


def _default_labels(dataset: Optional[str]) -> Optional[Path]:
    if not dataset:
        return None
    candidates = []
    if os.environ.get("nnUNet_preprocessed"):
        candidates.append(Path(os.environ["nnUNet_preprocessed"]) / dataset / "gt_segmentations")
    if os.environ.get("nnUNet_raw"):
        candidates.append(Path(os.environ["nnUNet_raw"]) / dataset / "labelsTr")
    return next((c for c in candidates if c.is_dir()), None)


def _validation_cases(dataset: Optional[str], fold_dirs: Sequence[Path]) -> Optional[Dict[str, set]]:
    """fold name -> the cases nnU-Net's splits_final.json puts in that fold's validation set, if it is found."""
    if not dataset or not os.environ.get("nnUNet_preprocessed"):
        return None
    splits_file = Path(os.environ["nnUNet_preprocessed"]) / dataset / "splits_final.json"
    if not splits_file.is_file():
        return None
    try:
        splits = json.loads(splits_file.read_text())
        expected = {}
        for d in fold_dirs:
            m = re.fullmatch(r"fold_(\d+)", d.name)
            if m is None or int(m.group(1)) >= len(splits):
                return None  # fold_all, or a split file of another run: fall back to the references
            expected[d.name] = set(splits[int(m.group(1))]["val"])
    except (ValueError, KeyError, TypeError) as e:
        raise ReportError(f"{splits_file}: not nnU-Net's splits file ({type(e).__name__}: {e}); restore it (nnU-Net "
                          f"writes it at the first training) or unset nnUNet_preprocessed and pass --labels") from None
    return expected


def _check_validation_split(path: Path, folds: Dict[str, str], expected: Dict[str, set], ending: str) -> None:
    """Refuse a prediction in ``fold_N/validation`` of a case that fold trained on: it would be scored as
    validation while the network saw its label."""
    wrong = sorted(c for c, fold in folds.items() if c not in expected[fold])
    if wrong:
        case = wrong[0]
        raise ReportError(f"{path / folds[case] / 'validation' / (case + ending)}: {case} is not in "
                          f"{folds[case]}'s validation set in splits_final.json ({len(wrong)} such case(s)); a "
                          f"case the fold trained on would be scored as unseen. Remove those predictions, or "
                          f"score them as a plain folder with --labels if they are predictions of another split")


def split_name(spec: str) -> Tuple[str, str]:
    """``NAME=PATH`` -> (NAME, PATH); a bare path (or one whose part before ``=`` has a ``/``, like ``./x=y``)
    -> ("", spec)."""
    name, sep, path_text = spec.partition("=")
    if not sep or "/" in name or not name:
        return "", spec
    return name, path_text


def find_result(spec: str, labels: Optional[Path] = None, chill: bool = False) -> TrainerResult:
    """One RESULTS argument -> TrainerResult (predictions, folds, references, logs).

    Every case the references (or, for nnU-Net folds, ``splits_final.json``) expect must have a
    prediction, as ``nnUNetv2_evaluate_folder`` requires; ``chill`` accepts a partial folder and
    records the missing cases instead.
    """
    name, path_text = split_name(spec)
    path = Path(path_text).expanduser().resolve()
    if not path.is_dir():
        raise ReportError(f"{path_text}: no such folder; pass an nnU-Net trainer folder, a fold_N folder or a "
                          f"folder of predictions (a folder whose name holds '=' is passed as ./NAME=...)")
    if (path / "validation").is_dir():           # a fold folder
        found = _nnunet_folds(path, path.parent, [path], name)
    elif sorted(path.glob("fold_*/validation")):  # a trainer folder
        found = _nnunet_folds(path, path, sorted(p.parent for p in path.glob("fold_*/validation")), name)
    else:                                         # a folder of predictions
        found = _plain_folder(path, labels, name)
    name, predictions, folds, logs, dataset, meta, ending, expected = found
    ref = labels or _default_labels(dataset)
    if ref is None:
        raise ReportError(f"{path}: no reference labels found; pass --labels DIR (for nnU-Net results, set "
                          f"nnUNet_preprocessed or nnUNet_raw so that gt_segmentations or labelsTr is found)")
    no_ref = [c for c in predictions if not (ref / f"{c}{ending}").is_file()]
    if no_ref:
        raise ReportError(f"{ref} has no reference for {len(no_ref)} predicted case(s) of {path}, e.g. "
                          f"{no_ref[0]}{ending}; pass the matching --labels folder")
    if expected is None:
        expected = {_case_id(f, ending) for f in _label_files(ref, ending)}
    missing = sorted(expected - set(predictions))
    if missing and not chill:
        raise ReportError(f"{path}: {len(missing)} of {len(expected)} expected cases have no prediction, e.g. "
                          f"{missing[0]}{ending} (expected: every reference in {ref}, or the validation cases of "
                          f"splits_final.json); finish those predictions, or pass --chill to score the "
                          f"{len(predictions)} present (the report states the missing ones)")
    return TrainerResult(name, path, predictions, folds, ref, ending, dataset, logs, _label_values(meta), missing,
                         report_classes((meta or {}).get("labels")))


def _nnunet_folds(path: Path, trainer_dir: Path, fold_dirs: List[Path], name: str):
    """The validation predictions and training logs of an nnU-Net trainer's folds; the cases expected are their
    validation sets in splits_final.json (when found), and each prediction must be of its fold's."""
    dataset = trainer_dir.parent.name if trainer_dir.parent.name.startswith("Dataset") else None
    meta = _dataset_json(trainer_dir)
    ending = (meta or {}).get("file_ending") or _guess_ending(fold_dirs[0] / "validation")
    predictions, folds, logs = {}, {}, {}
    for fold_dir in fold_dirs:
        logs[fold_dir.name] = sorted(fold_dir.glob("training_log_*.txt"))
        for f in _label_files(fold_dir / "validation", ending):
            case = _case_id(f, ending)
            if case in predictions:
                raise ReportError(f"case {case} is predicted in both {folds[case]} and {fold_dir.name} of {path}; "
                                  f"a cross-validation scores each case once (pass one fold folder instead)")
            predictions[case], folds[case] = f, fold_dir.name
    if not predictions:
        raise ReportError(f"{path}: the validation folders hold no {ending} files; did `nnUNetv2_train` finish "
                          f"(or run it with --val)?")
    per_fold = _validation_cases(dataset, fold_dirs)
    if per_fold is not None:
        _check_validation_split(trainer_dir, folds, per_fold, ending)
    expected = set().union(*per_fold.values()) if per_fold is not None else None
    return (name or trainer_dir.name.split("__")[0], predictions, folds, logs, dataset, meta, ending, expected)


def _plain_folder(path: Path, labels: Optional[Path], name: str):
    """The predictions of a plain folder (``nnUNetv2_predict``'s output); every reference is expected."""
    meta = _dataset_json(path, *([labels.parent] if labels else []))
    ending = (meta or {}).get("file_ending") or _guess_ending(path)
    predictions = {_case_id(f, ending): f for f in _label_files(path, ending)}
    if not predictions:  # also with --chill: a report of no case would be all "n/a"
        raise ReportError(f"{path}: holds no {ending} predictions; there is nothing to report. Pass the folder "
                          f"nnUNetv2_predict wrote")
    return (name or path.name, predictions, {c: "-" for c in predictions}, {}, None, meta, ending, None)


def describe_classes(classes: Dict[str, tuple]) -> str:
    """``{"liver": (1,), "whole liver": (1, 2)}`` -> ``"liver = 1, whole liver = 1+2"``."""
    return ", ".join(f"{name} = {'+'.join(map(str, values))}" for name, values in classes.items())


def find_results(specs: Sequence[str], labels: Optional[Path] = None, chill: bool = False) -> List[TrainerResult]:
    results = [find_result(s, labels, chill) for s in specs]
    names = [r.name for r in results]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ReportError(f"two results are named {dup[0]}; name them apart with NAME=PATH")
    other = next((r for r in results if r.classes != results[0].classes), None)
    if other is not None:
        raise ReportError(f"{results[0].name} and {other.name} score different classes ({describe_classes(results[0].classes)} "
                          f"against {describe_classes(other.classes)}, from their dataset.json); a report compares "
                          f"the same classes: report them apart")
    return results


def read_volume(path: Path, dtype=np.int16) -> Tuple[np.ndarray, Tuple[float, ...], object]:
    """Image file -> (array in SimpleITK's axis order, spacing per array axis, SimpleITK image).

    For the overlays; label maps that are scored go through :func:`read_label`."""
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise ReportError(f"cannot read {path}: {str(e).strip().splitlines()[-1]}") from None
    return sitk.GetArrayFromImage(image).astype(dtype), tuple(image.GetSpacing())[::-1], image


def read_label(path: Path, allowed: Sequence[int] = DEFAULT_LABEL_VALUES) -> Tuple[np.ndarray, Tuple[float, ...], object]:
    """A checked label map (complete, 3D, values in ``allowed``) -> (int16 array, spacing per array axis, image)."""
    array, image = read_label_array(path, allowed, ReportError)
    return array, tuple(image.GetSpacing())[::-1], image


def same_grid(a, b) -> bool:
    """Two SimpleITK images on the same voxel grid: size, spacing, origin and direction, to the tolerances a
    NIfTI header's float32 fields round to (spacing 0.1%, origin 1e-3 mm + 1e-5 relative, direction 1e-4)."""
    return (a.GetSize() == b.GetSize() and np.allclose(a.GetSpacing(), b.GetSpacing(), rtol=1e-3)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), rtol=1e-5, atol=1e-3)
            and np.allclose(a.GetDirection(), b.GetDirection(), rtol=0, atol=1e-4))


def describe_grid(image) -> str:
    return (f"size {format_numbers(image.GetSize())}, spacing {format_numbers(image.GetSpacing())}, origin "
            f"{format_numbers(image.GetOrigin())}, direction {format_numbers(image.GetDirection())}")


def _score_one(args: Tuple[str, str, str, Tuple[int, ...], Dict[str, tuple]]) -> Tuple[str, dict]:
    case, pred_path, ref_path, allowed, classes = args
    pred, _, pred_img = read_label(Path(pred_path), allowed)
    ref, spacing, ref_img = read_label(Path(ref_path), allowed)
    if not same_grid(pred_img, ref_img):
        raise ReportError(f"{pred_path} ({describe_grid(pred_img)}) does not lie on the grid of its reference "
                          f"{ref_path} ({describe_grid(ref_img)}); resample the prediction onto the reference "
                          f"(nnUNetv2_predict writes each prediction on its input's grid)")
    return case, case_metrics(pred, ref, spacing, classes)


def score_cases(result: TrainerResult, processes: int = 1) -> Dict[str, dict]:
    """case id -> ``{class: {metric: value}}`` for every prediction of ``result``."""
    jobs = [(c, str(p), str(result.labels / f"{c}{result.file_ending}"), result.label_values, result.classes)
            for c, p in result.predictions.items()]
    if processes <= 1:
        return dict(map(_score_one, jobs))
    with ProcessPoolExecutor(processes) as pool:
        return dict(pool.map(_score_one, jobs))


_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan"


def read_training_log(paths: Sequence[Path]) -> Dict[int, dict]:
    """nnU-Net's ``training_log_*.txt`` files of one fold -> ``{epoch: {train_loss, val_loss, pseudo_dice, epoch_time}}``,
    and ``steps`` for an epoch the plugin's budget cut short.

    nnU-Net writes, per epoch, ``Epoch N``, ``train_loss x``, ``val_loss x``, ``Pseudo dice [..]`` and
    ``Epoch time: x s``.
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
            elif m := re.match(rf"Epoch time: ({_FLOAT}) s\s*$", text):
                epochs[epoch]["epoch_time"] = float(m.group(1))
            elif m := re.search(r"spent in epoch \d+, after (\d+) of its \d+ steps", text):
                epochs[epoch]["steps"] = int(m.group(1))  # an epoch the budget cut short (trainers/budget.py)
            elif text.startswith("Pseudo dice"):
                body = re.sub(r"np\.float\d+\(", "(", text[len("Pseudo dice"):])
                epochs[epoch]["pseudo_dice"] = [float(v) for v in re.findall(_FLOAT, body)]
    return {e: v for e, v in epochs.items() if v}
