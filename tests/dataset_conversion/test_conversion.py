"""LiTS / MSD / ATLAS converters: layouts, geometry, labels, regions, and every bad-input case."""
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_dyntransnet.dataset_conversion.cli import convert_atlas_entry, convert_lits_entry
from nnunet_helpers import write_lits_source, write_volume as _write

SHAPE = (6, 10, 12)  # z, y, x


def _pair(rng, i):
    image = rng.integers(-1000, 1000, SHAPE).astype(np.int16)
    label = np.zeros(SHAPE, np.uint8)
    label[1:5, 2:8, 3:9] = 1
    label[2:4, 4:6, 4:6] = 2
    # every other case is stored flipped in x and y, as LiTS cases come
    direction = (-1, 0, 0, 0, -1, 0, 0, 0, 1) if i % 2 else None
    origin = (10.0 * i, -5.0, 3.0)
    return image, label, direction, origin


@pytest.fixture
def lits(tmp_path):
    rng = np.random.default_rng(0)
    pairs = [_pair(rng, i) for i in range(4)]
    return write_lits_source(tmp_path / "LiTS", pairs, rng.integers(-1000, 1000, SHAPE).astype(np.int16))


@pytest.fixture
def raw(tmp_path, monkeypatch):
    raw = tmp_path / "nnUNet_raw"
    monkeypatch.setenv("nnUNet_raw", str(raw))
    return raw


def _assert_nothing_written(raw: Path, dataset="Dataset501_LiTS"):
    assert not (raw / dataset).exists()
    assert not [p for p in raw.glob(".*converting*")] if raw.exists() else True


def test_lits_release_layout(lits, raw):
    assert convert_lits_entry([str(lits)]) == 0
    out = raw / "Dataset501_LiTS"
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == [f"lits_{i:03d}_0000.nii.gz" for i in range(4)]
    assert sorted(p.name for p in (out / "imagesTs").iterdir()) == ["lits_test_000_0000.nii.gz"]
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "liver": 1, "tumor": 2}
    assert meta["channel_names"] == {"0": "CT"} and meta["numTraining"] == 4
    for i in range(4):
        src = sitk.ReadImage(str(next(lits.rglob(f"volume-{i}.nii"))))
        img = sitk.ReadImage(str(out / "imagesTr" / f"lits_{i:03d}_0000.nii.gz"))
        lab = sitk.ReadImage(str(out / "labelsTr" / f"lits_{i:03d}.nii.gz"))
        for converted in (img, lab):
            assert converted.GetDirection() == src.GetDirection() and converted.GetOrigin() == src.GetOrigin()
            assert np.allclose(converted.GetSpacing(), src.GetSpacing())
        assert np.array_equal(sitk.GetArrayFromImage(img), sitk.GetArrayFromImage(src))
        assert set(np.unique(sitk.GetArrayFromImage(lab))) == {0, 1, 2}
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    verify_dataset_integrity(str(out), num_processes=1)


def test_msd_layout_skips_resource_forks_and_writes_regions(tmp_path, raw):
    rng = np.random.default_rng(1)
    src = tmp_path / "Task03_Liver"
    for i in (0, 3):
        image, label, direction, origin = _pair(rng, i)
        _write(src / "imagesTr" / f"liver_{i}.nii.gz", image, direction=direction, origin=origin)
        _write(src / "labelsTr" / f"liver_{i}.nii.gz", label, direction=direction, origin=origin)
        (src / "imagesTr" / f"._liver_{i}.nii.gz").write_bytes(b"\x00\x05\x16\x07 mac resource fork")
        (src / "labelsTr" / f"._liver_{i}.nii.gz").write_bytes(b"\x00\x05\x16\x07")
    _write(src / "imagesTs" / "liver_200.nii.gz", rng.integers(-100, 100, SHAPE).astype(np.int16))
    assert convert_lits_entry([str(src), "-d", "503", "--regions", "-np", "2"]) == 0
    out = raw / "Dataset503_LiTS"
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == ["lits_000.nii.gz", "lits_003.nii.gz"]
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "liver": [1, 2], "tumor": 2}
    assert meta["regions_class_order"] == [1, 2]
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    verify_dataset_integrity(str(out), num_processes=1)


@pytest.mark.parametrize("nested", [True, False], ids=["release_root", "train_folder"])
def test_atlas_layout(tmp_path, raw, nested):
    rng = np.random.default_rng(2)
    root = tmp_path / "atlas-train-dataset-1.0.1"
    train = root / "train"
    for i in (0, 1, 59):
        image, label, direction, origin = _pair(rng, i)
        _write(train / "imagesTr" / f"im{i}.nii.gz", image.astype(np.float32), direction=direction, origin=origin)
        # float labels with integer values, as some releases store them
        _write(train / "labelsTr" / f"lb{i}.nii.gz", label.astype(np.float32), direction=direction, origin=origin)
    (train / "dataset.json").write_text("{}")
    assert convert_atlas_entry([str(root if nested else train)]) == 0
    out = raw / "Dataset502_ATLAS"
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == ["atlas_000.nii.gz", "atlas_001.nii.gz", "atlas_059.nii.gz"]
    assert json.loads((out / "dataset.json").read_text())["channel_names"] == {"0": "MRI"}
    lab = sitk.ReadImage(str(out / "labelsTr" / "atlas_059.nii.gz"))
    assert lab.GetPixelID() == sitk.sitkUInt8


def _break(lits: Path, how: str) -> str:
    """Damage the fake LiTS release; returns text the error must contain."""
    batch = lits / "Training Batch 2"
    image, label, _, _ = _pair(np.random.default_rng(5), 0)
    if how == "missing_label":
        _write(batch / "volume-7.nii", image)
        return "volume-7.nii: no label for this image"
    if how == "extra_label":
        _write(batch / "segmentation-9.nii", label)
        return "segmentation-9.nii: no image for this label"
    if how == "shape":
        _write(batch / "segmentation-2.nii", label[:, :, :-1], origin=(20.0, -5.0, 3.0))
        return "segmentation-2.nii: does not lie on the grid of volume-2.nii (shape"
    if how == "spacing":
        _write(batch / "segmentation-2.nii", label, spacing=(0.8, 0.8, 5.0), origin=(20.0, -5.0, 3.0))
        return "(spacing"
    if how == "origin":
        _write(batch / "segmentation-2.nii", label, origin=(99.0, -5.0, 3.0))
        return "(origin"
    if how == "direction":
        _write(batch / "segmentation-2.nii", label, origin=(20.0, -5.0, 3.0), direction=(1, 0, 0, 0, -1, 0, 0, 0, -1))
        return "(direction"
    if how in ("label_3", "label_half"):
        bad = label.astype(np.float32)
        bad[0, 0, 0] = 3 if how == "label_3" else 0.5
        _write(batch / "segmentation-2.nii", bad, origin=(20.0, -5.0, 3.0))
        return "segmentation-2.nii: label values (" + ("3" if how == "label_3" else "0.5") + ") are outside the dataset's labels (0, 1, 2)"
    if how in ("nan", "inf"):
        bad = image.astype(np.float32)
        bad[1, 1, 1] = np.nan if how == "nan" else np.inf
        # nibabel keeps NaN/inf; SimpleITK's reader would silently turn them into 0
        nibabel.save(nibabel.Nifti1Image(bad.transpose(2, 1, 0), np.diag([0.8, 0.8, 2.5, 1.0])), str(batch / "volume-3.nii"))
        nibabel.save(nibabel.Nifti1Image(label.transpose(2, 1, 0), np.diag([0.8, 0.8, 2.5, 1.0])), str(batch / "segmentation-3.nii"))
        return "volume-3.nii: 1 voxels are NaN or infinite"
    if how == "truncated":
        path = batch / "volume-2.nii"
        path.write_bytes(path.read_bytes()[:400])
        return "volume-2.nii: cannot read its voxels"
    if how == "truncated_gz":
        path = batch / "segmentation-2.nii.gz"
        _write(path, label, origin=(20.0, -5.0, 3.0))
        (batch / "segmentation-2.nii").unlink()
        path.write_bytes(path.read_bytes()[:-30])
        return "segmentation-2.nii.gz: cannot read its voxels"
    raise ValueError(how)


FAILURES = ["missing_label", "extra_label", "shape", "spacing", "origin", "direction", "label_3", "label_half", "nan",
            "inf", "truncated", "truncated_gz"]


@pytest.mark.parametrize("how", FAILURES)
def test_bad_input_names_the_file_and_leaves_nothing(lits, raw, capsys, how):
    expected = _break(lits, how)
    assert convert_lits_entry([str(lits)]) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    _assert_nothing_written(raw)


def test_empty_and_unknown_folders(tmp_path, raw, capsys):
    (tmp_path / "empty").mkdir()
    assert convert_lits_entry([str(tmp_path / "empty")]) == 2
    assert "found neither LiTS files" in capsys.readouterr().err
    assert convert_atlas_entry([str(tmp_path / "empty")]) == 2
    assert "no imagesTr/ and labelsTr/" in capsys.readouterr().err
    assert convert_lits_entry([str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    _assert_nothing_written(raw)


def test_existing_dataset_is_kept_unless_overwrite(lits, raw, capsys):
    mine = raw / "Dataset501_MyOwnData"
    mine.mkdir(parents=True)
    (mine / "precious.txt").write_text("user data")
    assert convert_lits_entry([str(lits)]) == 2
    assert "Dataset501_MyOwnData already exists" in capsys.readouterr().err
    assert (mine / "precious.txt").read_text() == "user data"
    assert not (raw / "Dataset501_LiTS").exists()
    # same id, another name: --overwrite alone refuses, naming both
    assert convert_lits_entry([str(lits), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "Dataset501_MyOwnData has the id 501 of the Dataset501_LiTS" in err and "--replace_other_name" in err
    assert (mine / "precious.txt").read_text() == "user data"
    # issue 28: even both flags never delete a dataset the plugin did not write (nnU-Net's one name per id is the
    # user's to settle)
    assert convert_lits_entry([str(lits), "--overwrite", "--replace_other_name"]) == 2
    assert "did not write" in capsys.readouterr().err and (mine / "precious.txt").read_text() == "user data"
    assert not (raw / "Dataset501_LiTS").exists()
    # a dataset a command of the plugin wrote under that id is replaced with both flags
    import shutil

    shutil.rmtree(mine)
    from nnunet_dyntransnet.dataset_conversion.phantom import main as make_phantom

    assert make_phantom(["-d", "501", "-n", "1", "--test", "0"]) == 0
    assert convert_lits_entry([str(lits), "--overwrite", "--replace_other_name"]) == 0
    assert not (raw / "Dataset501_LiverPhantomCT").exists() and (raw / "Dataset501_LiTS" / "dataset.json").is_file()


def test_failed_overwrite_keeps_the_old_dataset(lits, raw, capsys):
    assert convert_lits_entry([str(lits)]) == 0
    _break(lits, "label_3")
    assert convert_lits_entry([str(lits), "--overwrite"]) == 2
    assert (raw / "Dataset501_LiTS" / "labelsTr" / "lits_002.nii.gz").is_file()
    assert not list(raw.glob(".*converting*"))


def test_console_command_exit_code_and_missing_nnunet_raw(lits):
    env = {k: v for k, v in os.environ.items() if k != "nnUNet_raw"}
    exe = Path(sys.executable).parent / "dyntransnet_convert_lits"
    proc = subprocess.run([str(exe), str(lits)], env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "nnUNet_raw is not set" in proc.stderr
