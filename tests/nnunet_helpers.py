"""Helpers for the end-to-end tests: a tiny synthetic raw dataset and nnU-Net commands as subprocesses."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import SimpleITK as sitk

TEST_TRAINERS = str(Path(__file__).parent / "nnunet_test_trainers")
# image axes (z, y, x); spacing (x, y, z) in SimpleITK order: thick slices so nnU-Net plans an anisotropic net
SHAPE = (16, 48, 48)
SPACING = (1.0, 1.0, 3.5)
DIRECTION = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)  # LPS-flipped x and y, like many CTs
ORIGIN = (120.5, -30.25, 7.0)


def _case(rng: np.random.Generator):
    zz, yy, xx = np.meshgrid(*[np.arange(s) for s in SHAPE], indexing="ij")
    cz, cy, cx = SHAPE[0] / 2 + rng.uniform(-1, 1), SHAPE[1] / 2 + rng.uniform(-4, 4), SHAPE[2] / 2 + rng.uniform(-4, 4)
    liver = ((zz - cz) / 6) ** 2 + ((yy - cy) / 15) ** 2 + ((xx - cx) / 12) ** 2 < 1
    ty, tx = cy + rng.uniform(-5, 5), cx + rng.uniform(-4, 4)
    tumor = liver & (((zz - cz) / 2.5) ** 2 + ((yy - ty) / 5) ** 2 + ((xx - tx) / 5) ** 2 < 1)
    label = liver.astype(np.uint8) + tumor.astype(np.uint8)
    image = rng.normal(-50, 20, SHAPE) + 110 * liver - 70 * tumor
    return image.astype(np.float32), label


def _write(array: np.ndarray, path: Path) -> None:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(SPACING)
    img.SetDirection(DIRECTION)
    img.SetOrigin(ORIGIN)
    sitk.WriteImage(img, str(path))


def write_volume(path: Path, array: np.ndarray, spacing=(0.8, 0.8, 2.5), origin=None, direction=None) -> None:
    """A NIfTI (or any SimpleITK format) of ``array`` (z, y, x); spacing (x, y, z), cut to the array's axes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(tuple(spacing)[: array.ndim])
    if origin is not None:
        img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    sitk.WriteImage(img, str(path))


def write_lits_source(src: Path, pairs, test_volume: Optional[np.ndarray] = None) -> Path:
    """LiTS as it is downloaded: ``volume-i.nii`` and ``segmentation-i.nii`` in "Training Batch 1" (cases 0 and 1)
    and "Training Batch 2"; ``pairs`` yields ``(image, label, direction, origin)``; a ``Test`` volume if given."""
    for i, (image, label, direction, origin) in enumerate(pairs):
        batch = "Training Batch 1" if i < 2 else "Training Batch 2"
        write_volume(src / batch / f"volume-{i}.nii", image, direction=direction, origin=origin)
        write_volume(src / batch / f"segmentation-{i}.nii", label, direction=direction, origin=origin)
    if test_volume is not None:
        write_volume(src / "Test" / "test-volume-0.nii", test_volume)
    return src


def write_tiny_dataset(raw: Path, dataset_id: int, n_train: int = 6, n_test: int = 2, seed: int = 0) -> Path:
    """Write ``DatasetXXX_Tiny`` in nnU-Net's raw format; returns its folder."""
    rng = np.random.default_rng(seed)
    root = raw / f"Dataset{dataset_id:03d}_Tiny"
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n_train + n_test):
        image, label = _case(rng)
        split = "Tr" if i < n_train else "Ts"
        _write(image, root / f"images{split}" / f"tiny_{i:03d}_0000.nii.gz")
        _write(label, root / f"labels{split}" / f"tiny_{i:03d}.nii.gz")
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT"},
        "labels": {"background": 0, "liver": 1, "tumor": 2},
        "numTraining": n_train,
        "file_ending": ".nii.gz",
    }, indent=2))
    return root


def nnunet_env(base: Path, results: Optional[Path] = None, ext_trainer: Optional[str] = TEST_TRAINERS) -> Dict[str, str]:
    """A clean environment with nnU-Net's paths under ``base``, one data-augmentation worker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update(
        nnUNet_raw=str(base / "raw"),
        nnUNet_preprocessed=str(base / "preprocessed"),
        nnUNet_results=str(results or base / "results"),
        nnUNet_n_proc_DA="1",
        nnUNet_def_n_proc="1",  # nnU-Net's validation export would spawn 8 processes, each importing torch
        nnUNet_compile="false",
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"),
        PYTHONUNBUFFERED="1",
    )
    if ext_trainer:
        env["nnUNet_extTrainer"] = ext_trainer
    return env


def run_command(args: List[str], env: Dict[str, str], timeout: int = 900) -> str:
    """Run an installed console command (from this interpreter's bin folder); fail with its output."""
    exe = Path(sys.executable).parent / args[0]
    cmd = [str(exe) if exe.exists() else args[0], *args[1:]]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited with {proc.returncode}:\n{output[-6000:]}")
    return output
