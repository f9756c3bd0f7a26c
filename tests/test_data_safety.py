"""Nothing lost, nothing silently wrong: every way a careful user broke the writing commands (issue 13).

Each test reproduces one reported case on small files, in-process where a subprocess adds
nothing (SIGTERM needs a real process).
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk
from process_helpers import wait_for

from nnunet_dyntransnet.utilities import staging
from nnunet_dyntransnet.dataset_conversion.cli import convert_lits_entry
from nnunet_dyntransnet.evaluation import cli as report_cli
from nnunet_helpers import write_lits_source, write_volume as _write

SHAPE = (6, 12, 14)


def _write_4d(path: Path, array: np.ndarray):
    """A 4D NIfTI (x, y, z, t), as a dynamic or multi-phase scan comes; ``array`` is (t, z, y, x)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(array.transpose(3, 2, 1, 0), np.diag([0.8, 0.8, 2.5, 1.0])), str(path))


def _label(shift=0):
    label = np.zeros(SHAPE, np.uint8)
    label[1:5, 2 + shift:9 + shift, 3:10] = 1
    label[2:4, 4 + shift:6 + shift, 5:7] = 2
    return label


@pytest.fixture
def raw(tmp_path, monkeypatch):
    raw = tmp_path / "nnUNet_raw"
    monkeypatch.setenv("nnUNet_raw", str(raw))
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "nnUNet_preprocessed"))
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "nnUNet_results"))
    return raw


@pytest.fixture
def lits(tmp_path):
    rng = np.random.default_rng(0)
    return write_lits_source(tmp_path / "LiTS", [(rng.integers(-500, 500, SHAPE).astype(np.int16), _label(), None, None)
                                                 for _ in range(3)])


def _hidden(folder: Path):
    return sorted(p.name for p in folder.glob(".*")) if folder.is_dir() else []


# ---------------------------------------------------------------- conversion: replacing safely (items 2, 3)

def test_replace_is_undone_when_the_new_dataset_cannot_move_in(lits, raw, monkeypatch, capsys):
    assert convert_lits_entry([str(lits)]) == 0
    old_json = raw / "Dataset501_LiTS" / "dataset.json"
    old_json.write_text(old_json.read_text().replace("nnunet-dyntransnet", "nnunet-dyntransnet", 1) + "\n")
    kept = old_json.read_text()
    real_rename = Path.rename

    def failing_rename(self, target):
        if ".converting-" in self.name:  # the new dataset moving into place
            raise OSError(28, "No space left on device")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    assert convert_lits_entry([str(lits), "--overwrite"]) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert "could not move the new Dataset501_LiTS into place (No space left on device)" in err
    assert "the old one is back as it was" in err
    assert old_json.read_text() == kept, "the old dataset is back in place"
    assert _hidden(raw) == []


def test_an_undeletable_old_dataset_is_refused_before_anything_moves(lits, raw, monkeypatch, capsys):
    assert convert_lits_entry([str(lits)]) == 0
    locked = raw / "Dataset501_LiTS" / "labelsTr"
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    assert convert_lits_entry([str(lits), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert f"{locked} is not writable" in err and "chmod -R u+w" in err
    assert sorted(p.name for p in locked.iterdir()) == ["lits_000.nii.gz", "lits_001.nii.gz", "lits_002.nii.gz"]
    assert _hidden(raw) == []


def test_a_failed_delete_after_the_swap_keeps_the_new_dataset_and_says_where_the_old_one_is(lits, raw, monkeypatch,
                                                                                             capsys):
    assert convert_lits_entry([str(lits)]) == 0
    real_rmtree = staging.shutil.rmtree

    def failing_rmtree(path, *args, **kwargs):
        if ".replaced-" in str(path):
            raise OSError(5, "Input/output error")
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(staging.shutil, "rmtree", failing_rmtree)
    assert convert_lits_entry([str(lits), "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "could not be deleted" in err and "delete it by hand" in err
    assert (raw / "Dataset501_LiTS" / "dataset.json").is_file()


def test_other_name_with_same_id_needs_its_own_flag_and_stale_preprocessed_data_is_named(lits, raw, tmp_path, capsys):
    other = raw / "Dataset501_Other"
    other.mkdir(parents=True)
    pre = tmp_path / "nnUNet_preprocessed" / "Dataset501_Other"
    pre.mkdir(parents=True)
    assert convert_lits_entry([str(lits), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "Dataset501_Other" in err and "Dataset501_LiTS" in err and "--replace_other_name" in err
    assert other.is_dir() and not (raw / "Dataset501_LiTS").exists()
    assert convert_lits_entry([str(lits), "--overwrite", "--replace_other_name"]) == 0
    err = capsys.readouterr().err
    assert not other.exists() and pre.is_dir(), "preprocessed data is never deleted silently"
    assert f"{pre} belongs to the replaced Dataset501_Other" in err and "More than one dataset name found" in err
    # replacing the same name says the preprocessed copy is stale
    (tmp_path / "nnUNet_preprocessed" / "Dataset501_LiTS").mkdir()
    assert convert_lits_entry([str(lits), "--overwrite"]) == 0
    assert "nnUNetv2_plan_and_preprocess -d 501 --clean" in capsys.readouterr().err


# ---------------------------------------------------------------- interrupted runs (item 4)

@pytest.mark.parametrize("command", ["phantom", "report"])
def test_sigterm_cleans_up_the_staging_folder(tmp_path, command):
    env = {**os.environ, "nnUNet_raw": str(tmp_path / "raw"), "PYTHONUNBUFFERED": "1"}
    if command == "phantom":  # a real command; 400 cases take long enough to be interrupted
        argv = [str(Path(sys.executable).parent / "dyntransnet_make_phantom"), "-d", "977", "-n", "400", "--test", "0"]
        parent = tmp_path / "raw"
    else:  # the real report command, slowed down while it scores
        preds, labels = tmp_path / "pred", tmp_path / "labels"
        _write(preds / "c.nii.gz", _label())
        _write(labels / "c.nii.gz", _label())
        # the marker says the report is scoring, its imports done: a SIGTERM inside a slow import (scipy's) on a
        # loaded machine surfaced as an ImportError, not as the signal
        code = ("import sys, time; from nnunet_dyntransnet.evaluation import results as r; "
                f"r.score_cases = lambda *a, **k: (open({str(tmp_path / 'scoring')!r}, 'w').close(), time.sleep(120)); "
                "from nnunet_dyntransnet.evaluation.cli import main; sys.exit(main(sys.argv[1:]))")
        argv = [sys.executable, "-c", code, str(preds), "--labels", str(labels), "--out", str(tmp_path / "r"), "-np", "1"]
        parent = tmp_path
    started = (lambda: (tmp_path / "scoring").exists()) if command == "report" else (lambda: True)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: any(".converting-" in n or ".report-" in n for n in _hidden(parent)) and started()), \
            proc.communicate(timeout=5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "nothing was written" in err or "no report was written" in err
    assert _hidden(parent) == [] and not (tmp_path / "r").exists()


def test_stale_staging_folders_of_dead_runs_are_removed_and_a_retired_dataset_restored(lits, raw, capsys):
    raw.mkdir()
    dead = 2 ** 22 + 12345  # above Linux's default pid_max, so no such process
    host = staging._host()
    (raw / f".Dataset501_LiTS.converting-{dead}@{host}-0123abcd" / "imagesTr").mkdir(parents=True)
    (raw / ".Dataset501_LiTS.converting-89abcdef").mkdir()   # the name versions before 0.2 used
    alive = raw / f".Dataset501_LiTS.converting-{os.getpid()}@{host}-deadbeef"  # a run still going: kept
    alive.mkdir()
    # another node's run on a shared filesystem: its pid means nothing here, so it is never taken for dead (issue 27)
    elsewhere = raw / f".Dataset501_LiTS.converting-{dead}@{host}x-cafe0123"
    elsewhere.mkdir()
    retired = raw / f".Dataset501_LiTS.replaced-{dead}@{host}-00ff00ff"
    retired.mkdir()
    (retired / "dataset.json").write_text('{"converted_by": "nnunet-dyntransnet"}')  # an old dataset of the plugin
    assert convert_lits_entry([str(lits), "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "restored" in err and err.count("removed") == 2, err  # the two dead staging folders
    assert _hidden(raw) == sorted([alive.name, elsewhere.name])
    assert json.loads((raw / "Dataset501_LiTS" / "dataset.json").read_text())["numTraining"] == 3


# ---------------------------------------------------------------- the converters' input (items 8, 9, 10, 12)

@pytest.mark.parametrize("how", ["2d_case", "4d_test", "4d_training"])
def test_only_3d_volumes_are_converted(lits, raw, capsys, how):
    rng = np.random.default_rng(1)
    batch = lits / "Training Batch 2"
    if how == "2d_case":
        _write(batch / "volume-7.nii", rng.integers(-500, 500, SHAPE[1:]).astype(np.int16))
        _write(batch / "segmentation-7.nii", _label()[2])
        expected = "volume-7.nii: is a 2D image"
    elif how == "4d_test":
        _write_4d(lits / "Test" / "test-volume-0.nii", rng.integers(-500, 500, (2,) + SHAPE).astype(np.int16))
        expected = "test-volume-0.nii: is a 4D image"
    else:
        _write_4d(batch / "volume-7.nii", rng.integers(-500, 500, (2,) + SHAPE).astype(np.int16))
        _write_4d(batch / "segmentation-7.nii", np.stack([_label(), _label()]))
        expected = "volume-7.nii: is a 4D image"
    assert convert_lits_entry([str(lits)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "expected a 3D volume" in err, err
    assert not raw.exists() or sorted(raw.iterdir()) == []


def test_linked_batch_folder_is_followed_and_cases_are_counted_per_folder(lits, raw, tmp_path, capsys):
    elsewhere = tmp_path / "other_disk" / "batch2"
    (lits / "Training Batch 2").rename(elsewhere.parent.mkdir(parents=True) or elsewhere)
    (lits / "Training Batch 2").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "loop").symlink_to(lits, target_is_directory=True)  # a cycle must not be walked forever
    assert convert_lits_entry([str(lits)]) == 0
    out = capsys.readouterr().out
    assert "3 training and 0 test cases" in out
    assert "Training Batch 1: 2 training" in out and "Training Batch 2: 1 training" in out
    assert len(list((raw / "Dataset501_LiTS" / "labelsTr").iterdir())) == 3


def test_a_dangling_batch_link_is_refused_not_skipped(lits, raw, tmp_path, capsys):
    """Issue 28, case 10: a 'Training Batch 2' linked to a disk that is not mounted was skipped without a word."""
    (lits / "Training Batch 2").rename(tmp_path / "unmounted")
    (lits / "Training Batch 2").symlink_to(tmp_path / "gone", target_is_directory=True)
    assert convert_lits_entry([str(lits)]) == 2
    err = capsys.readouterr().err
    assert "Training Batch 2 is a link to" in err and "does not exist" in err
    assert not (raw / "Dataset501_LiTS").exists()


def test_nnunet_raw_that_is_a_file_or_not_writable(lits, raw, monkeypatch, capsys):
    raw.write_text("not a folder")
    assert convert_lits_entry([str(lits)]) == 2
    assert f"nnUNet_raw={raw} is a file" in capsys.readouterr().err
    raw.unlink()
    raw.mkdir()
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self.parent == raw:
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert convert_lits_entry([str(lits)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write in {raw} (Permission denied)" in err and "set nnUNet_raw to a folder you can write to" in err


def test_geometry_message_prints_plain_numbers(lits, raw, capsys):
    _write(lits / "Training Batch 2" / "segmentation-2.nii", _label(), direction=(1, 0, 0, 0, -1, 0, 0, 0, -1))
    assert convert_lits_entry([str(lits)]) == 2
    err = capsys.readouterr().err
    assert "(direction (1, 0, 0, 0, 1, 0, 0, 0, 1) vs (1, 0, 0, 0, -1, 0, 0, 0, -1))" in err
    assert "np.float64" not in err


# ---------------------------------------------------------------- the report (items 1, 5, 6, 7, 12)

@pytest.fixture
def preds(tmp_path, raw):
    """Raw dataset Dataset960_Safe with 3 labelled cases, and a folder predicting all three."""
    ds = raw / "Dataset960_Safe"
    for i in range(3):
        _write(ds / "labelsTr" / f"c{i}.nii.gz", _label())
        _write(ds / "imagesTr" / f"c{i}_0000.nii.gz", _label().astype(np.float32) * 50)
        _write(tmp_path / "pred" / f"c{i}.nii.gz", _label(shift=i % 2))
    (ds / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "liver": 1, "tumor": 2},
                                                 "file_ending": ".nii.gz"}))
    return tmp_path / "pred", ds / "labelsTr"


def _report(*args):
    return report_cli.main([str(a) for a in args] + ["-np", "1"])


@pytest.mark.parametrize("out", ["pred", "labels", "images", "parent_of_pred", "cwd", "nnunet_raw", "dataset"])
def test_report_never_replaces_an_input(preds, tmp_path, monkeypatch, capsys, out):
    pred, labels = preds
    images = labels.parent / "imagesTr"
    monkeypatch.chdir(tmp_path / "nnUNet_raw")
    target = {"pred": pred, "labels": labels, "images": images, "parent_of_pred": tmp_path, "cwd": Path("."),
              "nnunet_raw": tmp_path / "nnUNet_raw", "dataset": labels.parent}[out]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert _report(pred, "--labels", labels, "--images", images, "--out", target, "--overwrite") == 2
    err = capsys.readouterr().err
    assert "never" in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_overwrite_replaces_only_a_previous_report(preds, tmp_path, capsys):
    pred, labels = preds
    out = tmp_path / "report"
    assert _report(pred, "--labels", labels, "--out", out) == 0
    assert (out / report_cli.REPORT_MARKER).is_file()
    assert _report(pred, "--labels", labels, "--out", out) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert _report(pred, "--labels", labels, "--out", out, "--overwrite") == 0
    (out / "my_notes.txt").write_text("mine")
    assert _report(pred, "--labels", labels, "--out", out, "--overwrite") == 2
    assert "now also holds my_notes.txt" in capsys.readouterr().err
    assert (out / "my_notes.txt").read_text() == "mine"
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.tex").write_text("mine")
    assert _report(pred, "--labels", labels, "--out", other, "--overwrite") == 2
    assert "dyntransnet_report did not write" in capsys.readouterr().err and (other / "chapter1.tex").is_file()


def test_truncated_prediction_fails_instead_of_scoring(preds, tmp_path, capsys):
    pred, labels = preds
    f = pred / "c1.nii.gz"
    f.write_bytes(f.read_bytes()[:-40])
    assert _report(pred, "--labels", labels, "--out", tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert f"{f}: cannot read its voxels" in err or f"{f}: cannot read it as an image" in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("value, shown", [(3, "(3)"), (0.5, "(0.5)")])
def test_label_values_outside_the_dataset_are_refused(preds, tmp_path, capsys, value, shown):
    pred, labels = preds
    bad = _label().astype(np.float32)
    bad[0, 0, 0] = value
    _write(pred / "c2.nii.gz", bad)
    assert _report(pred, "--labels", labels, "--out", tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert f"c2.nii.gz: label values {shown} are outside the dataset's labels (0, 1, 2)" in err, err


def test_missing_and_mixed_predictions(preds, tmp_path, capsys):
    pred, labels = preds
    (pred / "c2.nii.gz").unlink()
    assert _report(pred, "--labels", labels, "--out", tmp_path / "r") == 2
    assert "1 of 3 expected cases have no prediction, e.g. c2.nii.gz" in capsys.readouterr().err
    assert _report(pred, "--labels", labels, "--out", tmp_path / "r", "--chill") == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| pred | 2 | 1 | - |" in md and "pred has no prediction for 1 expected case(s) (c2)" in md
    _write(pred / "c2.nii", _label())  # mixed endings: .nii beside .nii.gz
    assert _report(pred, "--labels", labels, "--out", tmp_path / "r2", "--chill") == 2
    assert "holds 1 image file(s) that do not end in .nii.gz, e.g. c2.nii" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["shifted", "flipped"])
def test_a_prediction_off_its_references_grid_is_refused(preds, tmp_path, capsys, how):
    """Issue 18, case 6: shifted 50 mm it scored Dice 100; stored flipped with its direction negated, 0.7%."""
    pred, labels = preds
    img = sitk.ReadImage(str(pred / "c1.nii.gz"))
    if how == "shifted":
        img.SetOrigin([o + d for o, d in zip(img.GetOrigin(), (50, 0, 0))])
    else:  # the same physical label map, stored with the x axis reversed
        array = sitk.GetArrayFromImage(img)[:, :, ::-1].copy()
        flipped = sitk.GetImageFromArray(array)
        flipped.SetSpacing(img.GetSpacing())
        direction = np.array(img.GetDirection()).reshape(3, 3)
        flipped.SetOrigin(img.TransformIndexToPhysicalPoint((img.GetSize()[0] - 1, 0, 0)))
        direction[:, 0] *= -1
        flipped.SetDirection(direction.ravel().tolist())
        img = flipped
    sitk.WriteImage(img, str(pred / "c1.nii.gz"))
    assert _report(pred, "--labels", labels, "--out", tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert "does not lie on the grid of its reference" in err and "origin" in err and "direction" in err, err
    assert not (tmp_path / "r").exists()


def test_a_report_of_no_prediction_is_refused_even_with_chill(preds, tmp_path, capsys):
    """Issue 18, case 17: --chill with no prediction at all wrote an all-n/a report, exit 0."""
    pred, labels = preds
    for f in pred.iterdir():
        f.unlink()
    (pred / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "liver": 1, "tumor": 2},
                                                   "file_ending": ".nii.gz"}))
    assert _report(pred, "--labels", labels, "--out", tmp_path / "r", "--chill") == 2
    assert "nothing to report" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_names_with_pipes_and_folders_with_equals_signs(preds, tmp_path, monkeypatch, capsys):
    pred, labels = preds
    odd = tmp_path / "x=y"
    pred.rename(odd)
    monkeypatch.chdir(tmp_path)
    assert _report("x=y", "--labels", labels, "--out", tmp_path / "r") == 2  # NAME x, PATH y
    assert "passed as ./NAME=" in capsys.readouterr().err
    assert _report("./x=y", "--labels", labels, "--out", tmp_path / "r") == 0
    assert _report(f"a|b={odd}", "--labels", labels, "--out", tmp_path / "r2") == 0
    md = (tmp_path / "r2" / "report.md").read_text()
    assert "| a\\|b | 3 | 0 | - |" in md
    assert "x=y" in json.loads((tmp_path / "r" / "summary.json").read_text())["results"]


# ---------------------------------------------------------------- dyntransnet_plan_and_preprocess (item 11)

@pytest.mark.parametrize("args, expected", [
    (["-gpu_memory_target", "nan"], "positive number of GB, got nan"),
    (["-gpu_memory_target", "inf"], "positive number of GB, got inf"),
    (["-gpu_memory_target", "-3"], "positive number of GB, got -3"),
    (["-overwrite_plans_name", "X", "-gpu_memory_target", "nan"], "got nan"),
    (["-c", "3d_bogus"], "invalid choice: '3d_bogus'"),
    (["-np", "0"], "-np must be at least 1"),
    (["-gpu_memory_target", "1e-9"], "is below the smallest DynTransNet any dataset can be planned for"),
])
def test_planner_arguments_are_checked_before_any_work(raw, tmp_path, capsys, args, expected):
    from nnunet_dyntransnet.plans.cli import main

    (raw / "Dataset961_Plan").mkdir(parents=True)
    try:
        code = main(["-d", "961", *args])
    except SystemExit as e:  # argparse's own refusal
        code = e.code
    assert code == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "nnUNet_preprocessed").exists(), "no fingerprint was extracted"
