"""A real CT through the whole pipeline: laid out as a LiTS release, converted, planned, trained, predicted.

Uses ``../shared/data/real_ct`` (one real abdominal CT with a liver mask); skips without it.
A tumor sphere is added inside the liver; a second copy is stored in another orientation.
"""
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_helpers import nnunet_env, run_command

REAL_CT = Path(__file__).resolve().parents[3] / "shared" / "data" / "real_ct"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (REAL_CT / "ct.nii.gz").is_file(),
                       reason=f"real CT not found at {REAL_CT} (../shared/data/real_ct beside the checkout)"),
]


def _with_tumor(mask: sitk.Image) -> sitk.Image:
    arr = sitk.GetArrayFromImage(mask)  # float64 {0, 1}, as the file comes
    liver = np.argwhere(arr > 0)
    center = liver[len(liver) // 2]
    zz, yy, xx = np.ogrid[tuple(slice(0, s) for s in arr.shape)]
    sphere = (zz - center[0]) ** 2 + (yy - center[1]) ** 2 + (xx - center[2]) ** 2 <= 16
    arr = arr.copy()
    arr[sphere & (arr > 0)] = 2.0
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(mask)
    return out


def _around_the_liver(ct: sitk.Image, mask: sitk.Image, margin: int = 4):
    """The scan cropped to the liver's bounding box plus ``margin`` voxels: the real voxels, spacing and direction
    (the origin moves with the crop), at a size a 2-core CPU plans, trains and predicts in a minute."""
    liver = np.argwhere(sitk.GetArrayFromImage(mask) > 0)  # (z, y, x)
    lo = np.maximum(liver.min(0) - margin, 0)
    hi = np.minimum(liver.max(0) + margin + 1, sitk.GetArrayFromImage(mask).shape)
    index, size = [int(v) for v in lo[::-1]], [int(v) for v in (hi - lo)[::-1]]  # SimpleITK's (x, y, z)
    return sitk.RegionOfInterest(ct, size, index), sitk.RegionOfInterest(mask, size, index)


def test_real_ct_converts_plans_trains_and_predicts_on_its_own_grid(tmp_path):
    ct, mask = _around_the_liver(sitk.ReadImage(str(REAL_CT / "ct.nii.gz")),
                                 sitk.ReadImage(str(REAL_CT / "liver_mask.nii.gz")))
    assert ct.GetOrigin() != sitk.ReadImage(str(REAL_CT / "ct.nii.gz")).GetOrigin()  # a real offset to keep
    label = _with_tumor(mask)
    flipped_ct, flipped_label = sitk.DICOMOrient(ct, "LPS"), sitk.DICOMOrient(label, "LPS")
    assert flipped_ct.GetDirection() != ct.GetDirection()
    release = tmp_path / "LiTS"
    (release / "Training Batch 1").mkdir(parents=True)
    (release / "Test").mkdir()
    sitk.WriteImage(ct, str(release / "Training Batch 1" / "volume-0.nii"))
    sitk.WriteImage(label, str(release / "Training Batch 1" / "segmentation-0.nii"))
    sitk.WriteImage(flipped_ct, str(release / "Training Batch 1" / "volume-1.nii"))
    sitk.WriteImage(flipped_label, str(release / "Training Batch 1" / "segmentation-1.nii"))
    sitk.WriteImage(flipped_ct, str(release / "Test" / "test-volume-0.nii"))

    env = nnunet_env(tmp_path)
    run_command(["dyntransnet_convert_lits", str(release), "-d", "501"], env)
    raw = tmp_path / "raw" / "Dataset501_LiTS"
    run_command(["nnUNetv2_plan_and_preprocess", "-d", "501", "-c", "3d_fullres", "-np", "1", "-npfp",
                 "1", "--verify_dataset_integrity"], env)
    # fold "all" validates on its own training cases, two whole CTs: skipped, the test volume is predicted below
    run_command(["nnUNetv2_train", "501", "3d_fullres", "all", "-tr", "nnUNetTrainerDynTransNetTest", "-device", "cpu"],
                {**env, "DYNTRANSNET_TEST_EPOCHS": "1", "DYNTRANSNET_TEST_SKIP_VALIDATION": "1"})
    out = tmp_path / "pred"
    run_command(["nnUNetv2_predict", "-i", str(raw / "imagesTs"), "-o", str(out), "-d", "501", "-c", "3d_fullres",
                 "-f", "all", "-tr", "nnUNetTrainerDynTransNetTest", "-device", "cpu", "-npp", "1", "-nps", "1",
                 "--disable_tta"], env)
    pred = sitk.ReadImage(str(out / "lits_test_000.nii.gz"))
    assert pred.GetSize() == flipped_ct.GetSize()
    assert np.allclose(pred.GetSpacing(), flipped_ct.GetSpacing())
    assert np.allclose(pred.GetOrigin(), flipped_ct.GetOrigin())
    assert np.allclose(pred.GetDirection(), flipped_ct.GetDirection())
    assert set(np.unique(sitk.GetArrayFromImage(pred))) <= {0, 1, 2}
    # the converted training cases kept their own grids and the tumor
    for i, (img, lab) in enumerate(((ct, label), (flipped_ct, flipped_label))):
        conv = sitk.ReadImage(str(raw / "labelsTr" / f"lits_{i:03d}.nii.gz"))
        assert conv.GetDirection() == lab.GetDirection() and conv.GetOrigin() == lab.GetOrigin()
        assert np.array_equal(sitk.GetArrayFromImage(conv), sitk.GetArrayFromImage(lab).astype(np.uint8))
