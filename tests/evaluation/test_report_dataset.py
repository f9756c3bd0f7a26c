"""The report reads what the dataset says: its classes and names (dataset.json) and its folds (splits_final.json)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from nnunet_helpers import write_volume

from nnunet_dyntransnet.evaluation import cli
from nnunet_dyntransnet.evaluation.metrics import report_classes

SHAPE = (6, 12, 12)


def _truth() -> np.ndarray:
    label = np.zeros(SHAPE, np.uint8)
    label[1:5, 2:10, 2:10] = 1
    label[2:4, 4:7, 4:7] = 2
    return label


def _rows(out):
    return {r["class"]: r for r in csv.DictReader((out / "metrics_per_case.csv").open())}


def _report(tmp_path, pred, labels):
    write_volume(tmp_path / "labels" / "c0.nii.gz", _truth())
    write_volume(tmp_path / "pred" / "c0.nii.gz", pred)
    (tmp_path / "pred" / "dataset.json").write_text(json.dumps({"labels": labels, "file_ending": ".nii.gz"}))
    assert cli.main([str(tmp_path / "pred"), "--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "r"),
                     "-np", "1"]) == 0
    return _rows(tmp_path / "r")


def test_a_declared_class_the_prediction_never_holds_scores_zero(tmp_path):
    """dataset.json declares vessel = 3; the truth has some, the prediction none: vessel Dice 0, never left out."""
    truth = _truth()
    truth[4, 9:11, 9:11] = 3
    write_volume(tmp_path / "labels" / "c0.nii.gz", truth)
    write_volume(tmp_path / "pred" / "c0.nii.gz", _truth())
    (tmp_path / "pred" / "dataset.json").write_text(json.dumps(
        {"labels": {"background": 0, "liver": 1, "tumor": 2, "vessel": 3}, "file_ending": ".nii.gz"}))
    assert cli.main([str(tmp_path / "pred"), "--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "r"),
                     "-np", "1"]) == 0
    rows = _rows(tmp_path / "r")
    assert float(rows["vessel"]["dice"]) == 0.0 and rows["vessel"]["n_ref"] == "4"
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["statistics"]["pred"]["vessel"]["dice"]["mean"] == 0.0
    assert "vessel = 3" in (tmp_path / "r" / "report.md").read_text()


def test_class_names_come_from_dataset_json(tmp_path):
    """tumor = 1, liver = 2: label 1 is scored as tumor. The prediction misses only the small label-2 block."""
    pred = _truth()
    pred[pred == 2] = 1
    rows = _report(tmp_path, pred, {"background": 0, "tumor": 1, "liver": 2})
    assert float(rows["liver"]["dice"]) == 0.0           # label 2, none predicted
    assert float(rows["tumor"]["recall"]) == 1.0         # label 1, all of it found
    assert float(rows["tumor"]["precision"]) < 1.0       # and label 2's voxels predicted as 1


def test_region_dataset_scores_its_regions():
    """nnU-Net's evaluation scores a region dataset's regions: liver = {1, 2}; no union is added beside it."""
    assert report_classes({"background": 0, "liver": [1, 2], "tumor": 2}) == {"liver": (1, 2), "tumor": (2,)}
    assert report_classes({"background": 0, "liver": 1, "tumor": 2}) == {"liver": (1,), "tumor": (2,),
                                                                         "whole liver": (1, 2)}


@pytest.fixture
def fold_results(tmp_path, monkeypatch):
    """A trainer folder whose fold_0 validates c0 and c1 (splits_final.json); c2 and c3 are fold 0's training."""
    dataset = "Dataset962_Splits"
    pre = tmp_path / "preprocessed" / dataset
    pre.mkdir(parents=True)
    (pre / "splits_final.json").write_text(json.dumps([{"train": ["c2", "c3"], "val": ["c0", "c1"]},
                                                        {"train": ["c0", "c1"], "val": ["c2", "c3"]}]))
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "preprocessed"))
    trainer = tmp_path / "results" / dataset / "T__nnUNetPlans__3d_fullres"
    (trainer / "fold_0" / "validation").mkdir(parents=True)
    (trainer / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "liver": 1, "tumor": 2},
                                                      "file_ending": ".nii.gz"}))
    for case in ("c0", "c1", "c2", "c3"):
        write_volume(tmp_path / "labels" / f"{case}.nii.gz", _truth())
    for case in ("c0", "c1"):
        write_volume(trainer / "fold_0" / "validation" / f"{case}.nii.gz", _truth())
    return trainer


def test_a_training_case_in_a_validation_folder_is_refused(tmp_path, fold_results, capsys):
    """c2 is in fold 0's training split: a prediction of it in fold_0/validation would be scored as unseen."""
    write_volume(fold_results / "fold_0" / "validation" / "c2.nii.gz", _truth())
    args = [str(fold_results), "--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "r"), "-np", "1"]
    assert cli.main(args) != 0
    err = capsys.readouterr().err
    assert "c2 is not in fold_0's validation set in splits_final.json" in err and "c2.nii.gz" in err
    assert not (tmp_path / "r").exists()
    (fold_results / "fold_0" / "validation" / "c2.nii.gz").unlink()
    assert cli.main(args) == 0
