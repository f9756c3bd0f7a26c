"""Find the cases of a LiTS, MSD Task03_Liver or ATLAS release on disk (see README, "Data")."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Tuple

from nnunet_dyntransnet.dataset_conversion.raw_dataset import Case, ConversionError

__all__ = ["find_lits_cases", "find_atlas_cases"]

Cases = Tuple[List[Case], List[Case], str]  # training, test, layout name


def _visible(paths):
    # macOS archives carry "._name" resource forks next to every file
    return [p for p in paths if p.is_file() and not p.name.startswith("._")]


def _files_below(src: Path) -> List[Path]:
    """Every file under ``src``, following linked folders (a ``Training Batch 2`` that is a link to another disk);
    a link that leads back to a folder already walked is not walked twice."""
    seen, files = set(), []
    for root, dirs, names in os.walk(src, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        for n in names:
            path = Path(root) / n
            if path.is_symlink() and not path.exists():  # os.walk lists a dangling link among the files
                raise ConversionError(f"{path} is a link to {os.readlink(path)}, which does not exist (a disk not "
                                      f"mounted?); mount it or remove the link, so that no case is left out")
            files.append(path)
    return files


def _numbered(paths, pattern: str) -> Dict[int, Path]:
    found: Dict[int, Path] = {}
    regex = re.compile(pattern)
    for p in paths:
        m = regex.fullmatch(p.name)
        if m:
            n = int(m.group(1))
            if n in found:
                raise ConversionError(f"{p}: case {n} appears twice ({found[n]} and {p}); keep one copy")
            found[n] = p
    return found


def _pair(images: Dict[int, Path], labels: Dict[int, Path], prefix: str) -> List[Case]:
    missing_labels = sorted(set(images) - set(labels))
    missing_images = sorted(set(labels) - set(images))
    if missing_labels:
        raise ConversionError(f"{images[missing_labels[0]]}: no label for this image (cases without a label: "
                              f"{missing_labels[:10]}); add the label or remove the image")
    if missing_images:
        raise ConversionError(f"{labels[missing_images[0]]}: no image for this label (labels without an image: "
                              f"{missing_images[:10]}); add the image or remove the label")
    return [Case(f"{prefix}_{n:03d}", images[n], labels[n]) for n in sorted(images)]


def find_lits_cases(src: Path) -> Cases:
    """LiTS as released (``volume-N.nii`` / ``segmentation-N.nii`` in ``Training Batch 1/2``, ``test-volume-N.nii``)
    or the MSD ``Task03_Liver`` layout (``imagesTr/liver_N.nii.gz``, ``labelsTr/``, ``imagesTs/``)."""
    src = Path(src)
    if not src.is_dir():
        raise ConversionError(f"{src}: not a folder; pass the LiTS release folder or the MSD Task03_Liver folder")
    if (src / "imagesTr").is_dir() and (src / "labelsTr").is_dir():
        images = _numbered(_visible((src / "imagesTr").iterdir()), r"liver_(\d+)\.nii(?:\.gz)?")
        labels = _numbered(_visible((src / "labelsTr").iterdir()), r"liver_(\d+)\.nii(?:\.gz)?")
        test_dir = src / "imagesTs"
        tests = _numbered(_visible(test_dir.iterdir()), r"liver_(\d+)\.nii(?:\.gz)?") if test_dir.is_dir() else {}
        if not images and not labels:
            raise ConversionError(f"{src / 'imagesTr'}: no liver_N.nii.gz files; is this the MSD Task03_Liver folder?")
        return _pair(images, labels, "lits"), [Case(f"lits_test_{n:03d}", p) for n, p in sorted(tests.items())], "msd"
    files = _visible(p for p in _files_below(src) if ".nii" in p.name)
    volumes = _numbered(files, r"volume-(\d+)\.nii(?:\.gz)?")
    segmentations = _numbered(files, r"segmentation-(\d+)\.nii(?:\.gz)?")
    tests = _numbered(files, r"test-volume-(\d+)\.nii(?:\.gz)?")
    if not volumes and not segmentations:
        raise ConversionError(
            f"{src}: found neither LiTS files (volume-N.nii and segmentation-N.nii, e.g. in 'Training Batch 1') nor "
            f"the MSD layout (imagesTr/liver_N.nii.gz, labelsTr/); pass the folder that holds them"
        )
    return (_pair(volumes, segmentations, "lits"),
            [Case(f"lits_test_{n:03d}", p) for n, p in sorted(tests.items())], "lits")


def find_atlas_cases(src: Path) -> Cases:
    """ATLAS training release: ``atlas-train-dataset-1.0.1/train/imagesTr/imN.nii.gz`` and ``labelsTr/lbN.nii.gz``."""
    src = Path(src)
    if not src.is_dir():
        raise ConversionError(f"{src}: not a folder; pass atlas-train-dataset-1.0.1 or its train/ folder")
    root = src / "train" if (src / "train").is_dir() else src
    if not ((root / "imagesTr").is_dir() and (root / "labelsTr").is_dir()):
        raise ConversionError(f"{src}: no imagesTr/ and labelsTr/ (nor train/imagesTr/); pass atlas-train-dataset-1.0.1 "
                              f"or its train/ folder")
    images = _numbered(_visible((root / "imagesTr").iterdir()), r"im(\d+)\.nii(?:\.gz)?")
    labels = _numbered(_visible((root / "labelsTr").iterdir()), r"lb(\d+)\.nii(?:\.gz)?")
    if not images and not labels:
        raise ConversionError(f"{root / 'imagesTr'}: no imN.nii.gz files; is this the ATLAS training release?")
    return _pair(images, labels, "atlas"), [], "atlas"
