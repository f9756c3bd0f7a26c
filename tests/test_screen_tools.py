"""The screens' evidence tools (docs/comparison/screens): epochs and seconds of a report that scored committed rows,
and false-positive components added to a committed file."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from test_docs_figures import ROOT, TABLE

SCREENS = ROOT / "docs" / "comparison" / "screens"
UNET, DEFAULT = "nnUNetTrainer_WallClock_NoMirroring", "nnUNetTrainerDynTransNet_Conv2_NoMirroring"
VARIANT = "nnUNetTrainerDynTransNet_Overlap_NoMirroring"


def _logs(results: Path, trainer: str, epoch_seconds: dict) -> None:
    """nnU-Net's training logs under ``results``: per fold, one 'Epoch time' line per epoch."""
    for fold, times in epoch_seconds.items():
        folder = results / "Dataset991_LiverPhantomCT" / f"{trainer}__nnUNetPlans__3d_fullres_narrow" / fold
        folder.mkdir(parents=True)
        (folder / "training_log_2026_12_7_00_00_00.txt").write_text(
            "".join(f"2026-12-07 00:00:00.000000: Epoch time: {t} s\n" for t in times))


@pytest.mark.parametrize("kind", ["epochs", "seconds"])
def test_a_fresh_row_beside_scored_rows_takes_theirs_from_the_committed_screen(tmp_path, kind):
    _logs(tmp_path, VARIANT, {"fold_0": [1.5, 2.0], "fold_1": [3.0]})
    _logs(tmp_path, "nnUNetTrainerDynTransNet_Dec1_NoMirroring", {"fold_0": [9.0]})  # another trainer's: left out
    out = tmp_path / f"{kind}.json"
    TABLE.with_scored(kind, tmp_path, out, VARIANT, "equal_time_conv2", [UNET, DEFAULT])
    written = json.loads(out.read_text())
    committed = json.loads((SCREENS / "equal_time_conv2" / f"{kind}.json").read_text())
    fresh = {"epochs": {"fold_0": 2, "fold_1": 1}, "seconds": {"fold_0": 3.5, "fold_1": 3.0}}[kind]
    assert written == {VARIANT: fresh, **{t: {f: committed[t][f] for f in fresh} for t in (UNET, DEFAULT)}}


def test_a_scored_row_the_screen_lacks_or_a_row_without_logs_is_refused(tmp_path):
    _logs(tmp_path, VARIANT, {"fold_0": [1.5]})
    with pytest.raises(SystemExit, match="has no row nnUNetTrainerDynTransNet_Window_NoMirroring"):
        TABLE.with_scored("epochs", tmp_path, tmp_path / "e.json", VARIANT, "equal_time_conv2",
                          [UNET, "nnUNetTrainerDynTransNet_Window_NoMirroring"])
    with pytest.raises(SystemExit, match=f"{UNET} has no training log"):
        TABLE.with_scored("epochs", tmp_path, tmp_path / "e.json", UNET, "equal_time_conv2", [DEFAULT])
    assert not (tmp_path / "e.json").exists(), "a refused call writes nothing"


def _case(folder: Path, name: str, volume: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(volume.astype(np.uint8)), str(folder / name))


def _false_positives(tmp_path: Path, out: Path, folds: str) -> subprocess.CompletedProcess:
    results = tmp_path / "results" / "Dataset991_LiverPhantomCT"
    return subprocess.run([sys.executable, str(SCREENS / "false_positive_lesions.py"), str(results), folds, str(out),
                           VARIANT], capture_output=True, text=True,
                          env={**os.environ, "nnUNet_preprocessed": str(tmp_path / "preprocessed")})


def test_false_positive_components_are_added_to_a_file_of_the_same_folds_and_refused_for_other_folds(tmp_path):
    reference = np.zeros((8, 16, 16))
    reference[2:6, 2:14, 2:14] = 1
    reference[3:5, 4:7, 4:7] = 2  # one real lesion
    predicted = reference.copy()
    predicted[4, 11, 11] = 2  # and a single-voxel false positive inside the liver
    _case(tmp_path / "preprocessed" / "Dataset991_LiverPhantomCT" / "gt_segmentations", "case_000.nii.gz", reference)
    _case(tmp_path / "results" / "Dataset991_LiverPhantomCT" / f"{VARIANT}__nnUNetPlans__3d_fullres_narrow" / "fold_0"
          / "validation", "case_000.nii.gz", predicted)
    out = tmp_path / "false_positive_lesions_fold0.json"
    out.write_text(json.dumps({"folds": [0], "trainers": {UNET: {"false_positive_components": 7}}}))
    done = _false_positives(tmp_path, out, "0")
    assert done.returncode == 0, done.stderr
    trainers = json.loads(out.read_text())["trainers"]
    assert trainers[UNET] == {"false_positive_components": 7}  # the earlier row kept
    assert trainers[VARIANT]["false_positive_components"] == 1 and trainers[VARIANT]["single_voxel_share"] == 1.0
    before = out.read_text()
    refused = _false_positives(tmp_path, out, "0 1")
    assert refused.returncode != 0 and "holds folds [0], not [0, 1]" in refused.stderr
    assert out.read_text() == before


def _split_screen(tmp_path: Path, screen: str, parts: dict) -> None:
    """``screen``'s summary.json cut by fold into screens of their own under ``tmp_path`` (``{name: folds}``), each
    row's lesions set to (1, 2, 3) so that their pooling is known."""
    summary = json.loads((SCREENS / screen / "summary.json").read_text())
    for name, folds in parts.items():
        part = json.loads(json.dumps(summary))
        for trainer, cases in summary["folds"].items():
            kept = {case for case, fold in cases.items() if fold in folds}
            part["per_case"][trainer] = {c: v for c, v in summary["per_case"][trainer].items() if c in kept}
            part["anchors"][trainer]["lesions"] = {"matched": 1, "ref": 2, "pred": 3}
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(part))


def test_a_row_pooled_over_screens_of_other_folds_is_the_report_over_all_their_cases(tmp_path, monkeypatch):
    summary = json.loads((SCREENS / "patch_embedding" / "summary.json").read_text())
    _split_screen(tmp_path, "patch_embedding", {"first": {"fold_0", "fold_1"}, "second": {"fold_2"}})
    monkeypatch.setattr(TABLE, "HERE", tmp_path)
    found = TABLE.pooled(["first", "second"], VARIANT, DEFAULT)
    for cls in ("liver", "tumor", "whole liver"):
        statistic = summary["statistics"][VARIANT][cls]["dice"]
        assert found[cls]["n"] == statistic["n_pairs"]
        assert found[cls]["points"] == pytest.approx(100 * statistic["mean_difference"])
        assert found[cls]["p"] == pytest.approx(statistic["p_ttest"])
    assert found["lesions"] == {VARIANT: "2/4/6", DEFAULT: "2/4/6"}
    with pytest.raises(SystemExit, match="is in two of the screens"):
        TABLE.pooled(["first", "first"], VARIANT, DEFAULT)
