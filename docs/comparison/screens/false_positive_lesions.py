"""What a trainer's false-positive tumor components are: how large, and how far from the reference liver.

    python docs/comparison/screens/false_positive_lesions.py RESULTS_DIR "FOLDS" OUT.json TRAINER [TRAINER ...]

RESULTS_DIR is the screens' nnU-Net results folder of the phantom (``WORK/unet32/Dataset991_LiverPhantomCT``), FOLDS
e.g. ``"0 1"``; references are read from ``nnUNet_preprocessed``'s ``gt_segmentations`` of the same dataset. A
component (26-connected, predicted tumor) is a false positive when at most 10% of its voxels are reference tumor.
Per trainer: the number of false-positive components, their sizes in voxels (median and quartiles), the share of
them that are single voxels, and the median over their voxels of the distance to the reference liver (voxels; 0
inside it). When OUT exists and holds the same folds, these trainers are added to it (replacing their earlier rows,
keeping the others'); OUT of other folds is refused.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

SUFFIX = "__nnUNetPlans__3d_fullres_narrow"


def components(results: Path, trainer: str, folds: list, references: Path) -> dict:
    sizes, distances = [], []
    for fold in folds:
        for path in sorted((results / f"{trainer}{SUFFIX}" / f"fold_{fold}" / "validation").glob("*.nii.gz")):
            predicted = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
            reference = sitk.GetArrayFromImage(sitk.ReadImage(str(references / path.name)))
            to_liver = ndimage.distance_transform_edt(reference == 0)  # 0 in the liver and its tumors
            labels, n = ndimage.label(predicted == 2, np.ones((3, 3, 3)))
            for i in range(1, n + 1):
                mask = labels == i
                if (reference[mask] == 2).mean() <= 0.1:
                    sizes.append(int(mask.sum()))
                    distances += to_liver[mask].tolist()
    if not sizes:
        return {"false_positive_components": 0}
    return {"false_positive_components": len(sizes), "size_voxels_median": float(np.median(sizes)),
            "size_voxels_quartiles": [float(q) for q in np.percentile(sizes, [25, 75])],
            "single_voxel_share": round(sum(1 for s in sizes if s == 1) / len(sizes), 3),
            "distance_to_liver_voxels_median": round(float(np.median(distances)), 2)}


if __name__ == "__main__":
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    results, folds, out, trainers = Path(sys.argv[1]), [int(f) for f in sys.argv[2].split()], Path(sys.argv[3]), sys.argv[4:]
    references = Path(os.environ["nnUNet_preprocessed"]) / results.name / "gt_segmentations"
    found = {"folds": folds, "trainers": {}}
    if out.exists():
        found = json.loads(out.read_text())
        if found["folds"] != folds:
            raise SystemExit(f"false_positive_lesions.py: {out} holds folds {found['folds']}, not {folds}: give "
                             f"another OUT")
    found["trainers"].update({t: components(results, t, folds, references) for t in trainers})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(found, indent=1) + "\n")
    print(json.dumps(found, indent=1))
