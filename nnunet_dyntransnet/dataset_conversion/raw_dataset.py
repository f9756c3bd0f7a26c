"""Validated, atomic writing of an nnU-Net raw dataset from image/label pairs.

Every case is checked before anything is published: readable files, matching grids
(shape, spacing, origin, direction), label values in {0, 1, 2} (integer-valued floats are
fine), finite image voxels. The dataset is written into a hidden folder next to the target
and renamed into place only when every case succeeded, so a failed conversion leaves
nothing behind, and an existing dataset is replaced only with ``overwrite``.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from nnunet_dyntransnet.utilities.ownership import Claim, marked_files, write_marker
from nnunet_dyntransnet.utilities.staging import StagingError, remove_stale_staging, staged_folder
from nnunet_dyntransnet.utilities.volume_io import check_label_values, check_voxels, format_numbers, read_image

__all__ = ["Case", "ConversionError", "LABELS", "REGION_LABELS", "dataset_folder_name", "raw_root", "staged_dataset",
           "write_dataset_json",
           "write_raw_dataset", "check_case"]

LABELS = {"background": 0, "liver": 1, "tumor": 2}
# region training (sigmoid outputs, as the paper): whole liver = liver + tumor, and tumor
REGION_LABELS = {"background": 0, "liver": [1, 2], "tumor": 2}
ALLOWED_LABEL_VALUES = {0, 1, 2}
GEOMETRY_TOLERANCE = 1e-4  # relative, for spacing / origin / direction


class ConversionError(ValueError):
    """Bad input: the message names the file and the problem, and says what to do."""


@dataclass(frozen=True)
class Case:
    """One case to convert: ``case_id`` becomes the nnU-Net file name stem."""

    case_id: str
    image: Path
    label: Optional[Path] = None


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """nnU-Net's folder name for a dataset: ``Dataset501_LiTS``."""
    return f"Dataset{dataset_id:03d}_{name}"


def raw_root() -> Path:
    value = os.environ.get("nnUNet_raw")
    if not value:
        raise ConversionError("nnUNet_raw is not set: export nnUNet_raw=/path/to/nnUNet_raw (nnU-Net's raw data folder)")
    return Path(value)


def _same_geometry(a: sitk.Image, b: sitk.Image) -> Optional[str]:
    if a.GetSize() != b.GetSize():
        return f"shape {a.GetSize()} vs {b.GetSize()}"
    for what, x, y in (("spacing", a.GetSpacing(), b.GetSpacing()), ("origin", a.GetOrigin(), b.GetOrigin()),
                       ("direction", a.GetDirection(), b.GetDirection())):
        x, y = np.asarray(x), np.asarray(y)
        if not np.allclose(x, y, rtol=GEOMETRY_TOLERANCE, atol=GEOMETRY_TOLERANCE * max(1.0, np.abs(x).max())):
            return f"{what} {format_numbers(np.round(x, 5))} vs {format_numbers(np.round(y, 5))}"
    return None


def check_case(case: Case) -> tuple:
    """Read and validate one case; returns ``(image, label_or_None)`` as SimpleITK images."""
    image = read_image(case.image, ConversionError)
    check_voxels(case.image, image, ConversionError)
    if case.label is None:
        return image, None
    label = read_image(case.label, ConversionError)
    check_voxels(case.label, label, ConversionError)
    mismatch = _same_geometry(image, label)
    if mismatch:
        raise ConversionError(f"{case.label}: does not lie on the grid of {case.image.name} ({mismatch}); "
                              f"image and label must share shape, spacing, origin and direction")
    check_label_values(case.label, sitk.GetArrayViewFromImage(label), ALLOWED_LABEL_VALUES, ConversionError)
    return image, label


def _convert_one(args) -> Optional[str]:
    case, images_dir, labels_dir = args
    try:
        image, label = check_case(case)
        sitk.WriteImage(image, str(images_dir / f"{case.case_id}_0000.nii.gz"), useCompression=True)
        if label is not None:
            as_uint8 = sitk.Cast(sitk.Round(label) if label.GetPixelID() in (sitk.sitkFloat32, sitk.sitkFloat64)
                                 else label, sitk.sitkUInt8)
            sitk.WriteImage(as_uint8, str(labels_dir / f"{case.case_id}.nii.gz"), useCompression=True)
        return None
    except ConversionError as e:
        return str(e)
    except Exception as e:  # an unexpected failure still names the case
        return f"{case.image}: conversion failed ({type(e).__name__}: {e})"


def _existing_with_id(root: Path, dataset_id: int) -> List[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(f"Dataset{dataset_id:03d}_"))


def _derived_folders(dataset_id: int) -> List[Path]:
    """nnU-Net's preprocessed data and trained models of any dataset with this id."""
    found = []
    for var in ("nnUNet_preprocessed", "nnUNet_results"):
        if os.environ.get(var):
            found += _existing_with_id(Path(os.environ[var]), dataset_id)
    return found


def _warn_derived(dataset_id: int, replaced: Sequence[Path], target: Path) -> None:
    """Say which preprocessed data and models now belong to data that is gone (never delete them)."""
    for folder in _derived_folders(dataset_id):
        if folder.name == target.name and any(old.name == target.name for old in replaced):
            print(f"note: {folder} was made from the dataset just replaced; rerun `nnUNetv2_plan_and_preprocess "
                  f"-d {dataset_id} --clean` before training (models there were trained on the old data)",
                  file=sys.stderr)
        elif folder.name != target.name:
            print(f"warning: {folder} belongs to the replaced {folder.name}; nnU-Net stops with 'More than one "
                  f"dataset name found' for id {dataset_id} until you delete or rename it", file=sys.stderr)


# the commands that write raw datasets; each marks the datasets it writes (ownership.py), and --overwrite
# replaces a dataset only if one of them wrote every file in it
DATASET_COMMANDS = ("dyntransnet_convert_lits", "dyntransnet_convert_atlas", "dyntransnet_make_phantom")
_LAYOUT = ("imagesTr", "labelsTr", "imagesTs", "labelsTs")


def dataset_files(folder: Path) -> Optional[set]:
    """The files of ``folder`` that this plugin wrote: what a dataset command's marker lists, or, for a dataset
    converted before the marker existed (dataset.json says ``converted_by: nnunet-dyntransnet``), dataset.json and
    the files of nnU-Net's layout folders. None if no command of the plugin wrote it."""
    for command in DATASET_COMMANDS:
        listed = marked_files(folder, command)
        if listed is not None:
            return listed | {f".{command}"}
    try:
        import json

        if json.loads((folder / "dataset.json").read_text()).get("converted_by") != "nnunet-dyntransnet":
            return None
    except (OSError, ValueError, AttributeError):
        return None
    return {"dataset.json"} | {f"{sub}/{p.name}" for sub in _LAYOUT if (folder / sub).is_dir()
                               for p in (folder / sub).iterdir() if p.is_file() and not p.is_symlink()}


@contextmanager
def staged_dataset(dataset_id: int, name: str, overwrite: bool = False, root: Optional[Path] = None,
                   replace_other_name: bool = False, command: str = "dyntransnet_make_phantom",
                   inputs: Sequence[tuple] = ()) -> Iterator[Path]:
    """Yield a hidden staging folder; on success it becomes ``root/DatasetNNN_name``, on failure it vanishes.

    An existing dataset with the same id and name is replaced only with ``overwrite``; one with
    the same id and another name (nnU-Net allows one name per id) only with
    ``replace_other_name`` as well. The old dataset is retired only after the new one is
    complete (see :func:`nnunet_dyntransnet.utilities.staging.staged_folder`); preprocessed data and
    models of the replaced dataset are left in place and named on stderr.

    Ownership (:mod:`~nnunet_dyntransnet.utilities.ownership`): the dataset may not be, hold or lie in one of the
    ``inputs`` the ``command`` reads (a release unpacked inside the dataset folder), and an old dataset is replaced
    only if a dataset command of this plugin wrote every file in it (notes of the user's inside it are refused).
    """
    if not 1 <= dataset_id <= 999:
        raise ConversionError(f"dataset id {dataset_id} must be between 1 and 999 (nnU-Net's DatasetNNN)")
    root = root or raw_root()
    if root.exists() and not root.is_dir():
        raise ConversionError(f"nnUNet_raw={root} is a file, not a folder; point nnUNet_raw to a folder")
    target = root / dataset_folder_name(dataset_id, name)
    if root.is_dir():
        remove_stale_staging(target, "converting")  # first: it may put back a dataset an interrupted replace retired
    existing = _existing_with_id(root, dataset_id)
    if existing and not overwrite:
        raise ConversionError(f"{existing[0]} already exists (dataset id {dataset_id}); pass --overwrite to replace it "
                              f"or choose another id with -d")
    others = [p for p in existing if p.name != target.name]
    if others and not replace_other_name:
        raise ConversionError(f"{others[0]} has the id {dataset_id} of the {target.name} to write, under another "
                              f"name; --overwrite replaces only {target.name}. Choose another id with -d, or pass "
                              f"--replace_other_name as well to delete {others[0].name}")
    claim = Claim(command, inputs, "-d", ConversionError)
    claim.place(target)
    for old in existing:
        claim.folder(old, overwrite, owned=dataset_files)
    try:
        with staged_folder(target, replace=existing, tag="converting",
                           parent_hint="set nnUNet_raw to a folder you can write to") as staging:
            for sub in ("imagesTr", "labelsTr", "imagesTs"):
                (staging / sub).mkdir()
            yield staging
            write_marker(staging, command)
    except StagingError as e:
        raise ConversionError(str(e)) from None
    _warn_derived(dataset_id, existing, target)


def write_dataset_json(folder: Path, dataset_name: str, channel_name: str, num_training: int, regions: bool,
                       **info: str) -> None:
    """nnU-Net's dataset.json through nnU-Net's own writer; ``regions`` writes liver={1,2}, tumor={2}."""
    from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json

    generate_dataset_json(
        str(folder), {0: channel_name}, REGION_LABELS if regions else LABELS, num_training, ".nii.gz",
        regions_class_order=(1, 2) if regions else None, dataset_name=dataset_name,
        converted_by="nnunet-dyntransnet", **info,
    )


def write_raw_dataset(
    training: Sequence[Case],
    test: Sequence[Case],
    dataset_id: int,
    name: str,
    channel_name: str,
    regions: bool = False,
    overwrite: bool = False,
    replace_other_name: bool = False,
    num_processes: int = 1,
    root: Optional[Path] = None,
    command: str = "dyntransnet_convert_lits",
    inputs: Sequence[tuple] = (),
    **info: str,
) -> Path:
    """Validate every case and write ``$nnUNet_raw/DatasetNNN_name``; returns the dataset folder.

    ``info`` (description, reference, license) goes into dataset.json; ``command`` and ``inputs`` are the
    writing command and what it reads (:func:`staged_dataset`).

    Raises:
        ConversionError: on any bad input; nothing is left behind.
    """
    if not training:
        raise ConversionError("no training cases found")
    ids = [c.case_id for c in [*training, *test]]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConversionError(f"case ids occur twice: {duplicates[:5]}")
    folder_name = dataset_folder_name(dataset_id, name)
    with staged_dataset(dataset_id, name, overwrite, root, replace_other_name, command, inputs) as staging:
        images_tr, labels_tr, images_ts = staging / "imagesTr", staging / "labelsTr", staging / "imagesTs"
        jobs = [(c, images_tr, labels_tr) for c in training] + [(c, images_ts, None) for c in test]
        errors = _run(jobs, num_processes)
        if errors:
            shown = "\n  ".join(errors[:10])
            more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
            raise ConversionError(f"{len(errors)} of {len(jobs)} cases failed, nothing was written:\n  {shown}{more}")
        write_dataset_json(staging, folder_name, channel_name, len(training), regions, **info)
    return staging.parent / folder_name


def _run(jobs, num_processes: int) -> List[str]:
    from tqdm import tqdm

    progress = dict(total=len(jobs), desc="converting", unit="case")
    if num_processes <= 1:
        results = [_convert_one(j) for j in tqdm(jobs, **progress)]
    else:
        with get_context("spawn").Pool(num_processes) as pool:
            results = list(tqdm(pool.imap(_convert_one, jobs), **progress))
    return [r for r in results if r]
