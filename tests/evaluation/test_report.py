"""dyntransnet_report: metrics by hand and against nnU-Net's evaluation, and the command on nnU-Net-shaped folders."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as st
import SimpleITK as sitk
from scipy import ndimage

from nnunet_dyntransnet.evaluation.metrics import case_metrics, overlap_metrics, surface_distances, surface_metrics
from nnunet_dyntransnet.evaluation.results import read_training_log

SPACING_XYZ = (0.8, 0.8, 2.5)  # SimpleITK order; numpy axes are (z, y, x)


def _ball(shape, center, radii):
    grid = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, center, radii)) < 1


def test_overlap_by_hand():
    pred = np.zeros(10, bool); pred[0:4] = True     # 4 voxels
    gt = np.zeros(10, bool); gt[2:8] = True         # 6 voxels, 2 shared
    m = overlap_metrics(pred, gt)
    assert (m["dice"], m["precision"], m["recall"]) == pytest.approx((2 * 2 / 10, 2 / 4, 2 / 6))


def test_empty_masks_are_undefined_not_zero_or_one():
    empty, some = np.zeros((4, 4, 4), bool), np.zeros((4, 4, 4), bool)
    some[1:3, 1:3, 1:3] = True
    both = {**overlap_metrics(empty, empty), **surface_metrics(empty, empty, (1, 1, 1))}
    assert both["dice"] is None and both["precision"] is None and both["recall"] is None and both["hd95"] is None
    false_positive = {**overlap_metrics(some, empty), **surface_metrics(some, empty, (1, 1, 1))}
    assert false_positive["dice"] == 0.0 and false_positive["precision"] == 0.0
    assert false_positive["recall"] is None and false_positive["hd95"] is None and false_positive["asd"] is None
    missed = overlap_metrics(empty, some)
    assert missed["dice"] == 0.0 and missed["recall"] == 0.0 and missed["precision"] is None


def test_surface_distances_match_brute_force():
    """HD95 and ASD against every pair of surface points, at an anisotropic spacing."""
    spacing = (2.5, 0.8, 0.8)
    a = _ball((14, 30, 30), (7, 14, 15), (4, 10, 9))
    b = _ball((14, 30, 30), (8, 16, 14), (3.5, 9, 11))
    def surface_points(m):
        eroded = ndimage.binary_erosion(m, ndimage.generate_binary_structure(3, 1), border_value=0)
        return np.argwhere(m & ~eroded) * np.array(spacing)
    pa, pb = surface_points(a), surface_points(b)
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    pooled = np.concatenate([d.min(1), d.min(0)])
    got = surface_metrics(a, b, spacing)
    assert got["hd95"] == pytest.approx(np.percentile(pooled, 95))
    assert got["asd"] == pytest.approx(pooled.mean())
    assert np.sort(surface_distances(a, b, spacing)) == pytest.approx(np.sort(pooled))
    assert surface_metrics(a, a, spacing) == {"hd95": 0.0, "asd": 0.0}


def test_surface_distance_of_a_shift():
    """Two slabs one slice apart along z at 2.5 mm: every surface voxel is within one slice of the other surface."""
    a = np.zeros((10, 8, 8), bool); a[2:6] = True
    b = np.zeros((10, 8, 8), bool); b[3:7] = True
    m = surface_metrics(a, b, (2.5, 1.0, 1.0))
    assert m["hd95"] == pytest.approx(2.5)


def _write_label(array, path, spacing=SPACING_XYZ):
    img = sitk.GetImageFromArray(array.astype(np.uint8))
    img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path))


def _truth(rng, shape=(12, 40, 40), tumor=True):
    liver = _ball(shape, (6, 20 + rng.uniform(-3, 3), 20 + rng.uniform(-3, 3)), (5, 14, 13))
    label = liver.astype(np.uint8)
    if tumor:
        label[liver & _ball(shape, (6, 20 + rng.uniform(-4, 4), 18), (2.5, 5, 5))] = 2
    return label


def _perturb(rng, label, quality):
    """A plausible prediction: the truth shifted and eroded or dilated, the tumor sometimes missed."""
    def grow(mask, n):  # scipy repeats a 0-iteration dilation until nothing changes, so skip n == 0
        return ndimage.binary_dilation(mask, iterations=n) if n else mask

    pred = np.roll(label, int(rng.integers(-quality, quality + 1)), axis=1)
    liver = grow(pred >= 1, int(rng.integers(0, quality + 1)))
    out = liver.astype(np.uint8)
    if rng.uniform() < 0.8:
        out[grow(pred == 2, int(rng.integers(0, 2))) & liver] = 2
    return out


@pytest.fixture(scope="module")
def fake_results(tmp_path_factory):
    """nnU-Net's folder layout for Dataset950_Fake: raw images and labels, and two trainers with 2 folds each."""
    base = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(0)
    raw = base / "raw" / "Dataset950_Fake"
    (raw / "imagesTr").mkdir(parents=True)
    (raw / "labelsTr").mkdir()
    cases = [f"fake_{i:03d}" for i in range(10)]
    truths = {}
    for i, c in enumerate(cases):
        truths[c] = _truth(rng, tumor=(i != 3))  # fake_003 has no tumor
        _write_label(truths[c], raw / "labelsTr" / f"{c}.nii.gz")
        image = sitk.GetImageFromArray((truths[c] * 80 + rng.normal(0, 10, truths[c].shape)).astype(np.float32))
        image.SetSpacing(SPACING_XYZ)
        sitk.WriteImage(image, str(raw / "imagesTr" / f"{c}_0000.nii.gz"))
    trainers = {"nnUNetTrainerDynTransNet_Baseline": 3, "nnUNetTrainerDynTransNet": 1}
    for trainer, quality in trainers.items():
        tdir = base / "results" / "Dataset950_Fake" / f"{trainer}__nnUNetPlans__3d_fullres"
        (tdir).mkdir(parents=True)
        (tdir / "dataset.json").write_text(json.dumps({"file_ending": ".nii.gz", "labels": {"background": 0, "liver": 1, "tumor": 2}}))
        for fold in (0, 1):
            vdir = tdir / f"fold_{fold}" / "validation"
            vdir.mkdir(parents=True)
            for c in cases[fold::2]:
                _write_label(_perturb(rng, truths[c], quality), vdir / f"{c}.nii.gz")
            lines = []
            for epoch in range(4):
                lines += [f"2026-11-27 20:00:0{epoch}.000000: ", f"2026-11-27 20:00:0{epoch}.000001: Epoch {epoch}",
                          f"2026-11-27 20:00:0{epoch}.000002: Current learning rate: 0.01",
                          f"2026-11-27 20:00:0{epoch}.000003: train_loss {-0.1 * epoch:.4f}",
                          f"2026-11-27 20:00:0{epoch}.000004: val_loss {-0.08 * epoch:.4f}",
                          f"2026-11-27 20:00:0{epoch}.000005: Pseudo dice [np.float32({0.2 * epoch:.4f}), np.float32(0.1)]",
                          f"2026-11-27 20:00:0{epoch}.000006: Epoch time: 1.5 s"]
            (tdir / f"fold_{fold}" / "training_log_2026_11_27_20_00_00.txt").write_text("\n".join(lines) + "\n")
    return base, cases, list(trainers)


def _env(base):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update(nnUNet_raw=str(base / "raw"), nnUNet_preprocessed=str(base / "preprocessed"),
               nnUNet_results=str(base / "results"))
    return env


def _report(args, env):
    return subprocess.run([sys.executable, "-m", "nnunet_dyntransnet.evaluation.cli", *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=600)


def test_training_log_parser(fake_results):
    base, _, trainers = fake_results
    logs = sorted((base / "results" / "Dataset950_Fake").glob(f"{trainers[0]}__*/fold_0/training_log_*.txt"))
    epochs = read_training_log(logs)
    assert sorted(epochs) == [0, 1, 2, 3]
    assert epochs[2] == {"train_loss": -0.2, "val_loss": -0.16, "pseudo_dice": [0.4, 0.1], "epoch_time": 1.5}


def test_metrics_match_nnunet_evaluation(fake_results, tmp_path):
    """Dice and voxel counts per case for label 1, label 2 and region (1, 2), as nnUNetv2_evaluate_folder computes them."""
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    base, cases, trainers = fake_results
    pred_dir = base / "results" / "Dataset950_Fake" / f"{trainers[0]}__nnUNetPlans__3d_fullres" / "fold_0" / "validation"
    ref_dir = base / "raw" / "Dataset950_Fake" / "labelsTr"
    theirs = compute_metrics_on_folder(str(ref_dir), str(pred_dir), str(tmp_path / "summary.json"), SimpleITKIO(),
                                       ".nii.gz", [1, 2, (1, 2)], num_processes=1)
    names = {1: "liver", 2: "tumor", (1, 2): "whole liver"}
    checked_nan = 0
    for row in theirs["metric_per_case"]:
        case = Path(row["prediction_file"]).name[: -len(".nii.gz")]
        pred = sitk.GetArrayFromImage(sitk.ReadImage(row["prediction_file"]))
        ref = sitk.GetArrayFromImage(sitk.ReadImage(row["reference_file"]))
        ours = case_metrics(pred, ref, SPACING_XYZ[::-1])
        for region, name in names.items():
            m = row["metrics"][region]
            assert ours[name]["tp"] == m["TP"] and ours[name]["n_pred"] == m["n_pred"] and ours[name]["n_ref"] == m["n_ref"]
            if np.isnan(m["Dice"]):
                assert ours[name]["dice"] is None, case
                checked_nan += 1
            else:
                assert ours[name]["dice"] == pytest.approx(m["Dice"], abs=1e-12), (case, name)
    assert len(theirs["metric_per_case"]) == 5


def test_report_command(fake_results, tmp_path):
    base, cases, trainers = fake_results
    tdirs = [base / "results" / "Dataset950_Fake" / f"{t}__nnUNetPlans__3d_fullres" for t in trainers]
    out = tmp_path / "report"
    proc = _report([*tdirs, "--out", out, "--baseline", trainers[0], "-np", "2"], _env(base))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    md = (out / "report.md").read_text()
    for heading in ("Submodule ablation (layout of the paper's Table 3)", "layout of the paper's Tables 4 and 5",
                    "Empty labels and predictions", "Dice per fold"):
        assert heading in md
    for fig in ("dice_boxplots.png", f"training_curves_{trainers[1]}.png", f"overlays_{trainers[1]}.png"):
        assert (out / "figures" / fig).stat().st_size > 10_000, fig
        assert f"figures/{fig}" in md
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["per_case"][trainers[1]]) == cases
    assert summary["folds"][trainers[1]]["fake_001"] == "fold_1"
    # the p-values are scipy's on the same paired cases
    a = summary["per_case"][trainers[1]]
    b = summary["per_case"][trainers[0]]
    for cls in ("liver", "tumor", "whole liver"):
        paired = [c for c in cases if a[c][cls]["dice"] is not None and b[c][cls]["dice"] is not None]
        x, y = [a[c][cls]["dice"] for c in paired], [b[c][cls]["dice"] for c in paired]
        s = summary["statistics"][trainers[1]][cls]["dice"]
        assert s["n_pairs"] == len(paired)
        assert s["mean_difference"] == pytest.approx(np.mean(x) - np.mean(y), rel=1e-9)
        assert f"| {100 * s['mean_difference']:+.2f} | " in md
        assert s["p_ttest"] == pytest.approx(st.ttest_rel(x, y).pvalue, rel=1e-9)
        assert s["p_wilcoxon"] == pytest.approx(st.wilcoxon(x, y).pvalue, rel=1e-9)
        assert s["mean"] == pytest.approx(np.mean([v[cls]["dice"] for v in a.values() if v[cls]["dice"] is not None]))
    assert summary["statistics"][trainers[0]]["liver"]["dice"]["p_ttest"] is None  # the baseline itself
    # fake_003 has no tumor: Dice undefined if none predicted, 0 if some was; never 1
    tumor = a["fake_003"]["tumor"]
    assert tumor["n_ref"] == 0 and tumor["dice"] in (None, 0.0)
    with open(out / "metrics_per_case.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * len(cases) * 3


def test_report_refuses_bad_input_and_leaves_nothing(fake_results, tmp_path):
    base, cases, trainers = fake_results
    tdir = base / "results" / "Dataset950_Fake" / f"{trainers[0]}__nnUNetPlans__3d_fullres"
    env = _env(base)
    proc = _report([tdir, "--out", tmp_path / "r1", "--labels", tmp_path], env)
    assert proc.returncode == 2 and "has no reference for" in proc.stderr and str(tmp_path) in proc.stderr
    proc = _report([tmp_path / "missing", "--out", tmp_path / "r2"], env)
    assert proc.returncode == 2 and "no such folder" in proc.stderr
    proc = _report([tdir, "--out", tmp_path / "r3", "--baseline", "nnUNetTrainerNope"], env)
    assert proc.returncode == 2 and "nnUNetTrainerNope" in proc.stderr
    env.pop("nnUNet_raw")
    proc = _report([tdir, "--out", tmp_path / "r4"], env)
    assert proc.returncode == 2 and "--labels" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a failed report leaves no folder behind"
    # an existing report is kept unless --overwrite
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "report.md").write_text("mine")
    proc = _report([tdir, "--out", tmp_path / "keep"], _env(base))
    assert proc.returncode == 2 and "--overwrite" in proc.stderr
    assert (tmp_path / "keep" / "report.md").read_text() == "mine"


def test_predictions_folder_with_labels(fake_results, tmp_path):
    base, cases, trainers = fake_results
    vdir = base / "results" / "Dataset950_Fake" / f"{trainers[1]}__nnUNetPlans__3d_fullres" / "fold_0" / "validation"
    proc = _report([f"mine={vdir}", "--labels", base / "raw" / "Dataset950_Fake" / "labelsTr",
                    "--images", base / "raw" / "Dataset950_Fake" / "imagesTr", "--out", tmp_path / "r", "--chill"],
                   _env(base))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert sorted(summary["per_case"]["mine"]) == cases[0::2]
    assert summary["missing"]["mine"] == cases[1::2]  # half the references have no prediction: stated
    assert (tmp_path / "r" / "figures" / "overlays_mine.png").is_file()
    md = (tmp_path / "r" / "report.md").read_text()  # one result: no baseline is named, and no p-values claimed
    assert "One result, so no p-values" in md and "Baseline for the p-values" not in md and "no baseline" not in md


def test_lesion_detection_by_hand():
    from nnunet_dyntransnet.evaluation.metrics import lesion_detection

    gt = np.zeros((10, 40, 40), bool)
    pred = np.zeros_like(gt)
    gt[2:6, 2:8, 2:8] = True        # 4x6x6 voxels: found exactly
    pred[2:6, 2:8, 2:8] = True
    gt[2:6, 20:30, 20:30] = True    # 400 voxels, predicted over a quarter of it only: IoU 0.25, missed
    pred[2:6, 20:25, 20:25] = True
    gt[8, 35, 35] = True            # one voxel, not predicted
    pred[8, 2:4, 30:32] = True      # a false positive
    got = lesion_detection(pred, gt, (2.0, 1.0, 1.0))
    assert (got["ref"], got["pred"], got["matched"]) == (3, 3, 1)
    # equivalent-sphere diameters at 2 mm^3 per voxel: 1 voxel 1.6 mm, 144 voxels 8.2 mm, 400 voxels 11.5 mm
    assert got["by_size"] == {"< 10 mm": [1, 2], "10-20 mm": [0, 1], "> 20 mm": [0, 0]}


def test_anchor_numbers_match_nnunet_and_pooled_voxels(fake_results, tmp_path):
    """foreground_mean equals nnUNetv2_evaluate_folder's; global Dice equals Dice over all voxels pooled."""
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    from nnunet_dyntransnet.evaluation.results import find_result, score_cases
    from nnunet_dyntransnet.evaluation.tables import anchor_metrics

    base, cases, trainers = fake_results
    pred_dir = base / "results" / "Dataset950_Fake" / f"{trainers[0]}__nnUNetPlans__3d_fullres" / "fold_1" / "validation"
    ref_dir = base / "raw" / "Dataset950_Fake" / "labelsTr"
    theirs = compute_metrics_on_folder(str(ref_dir), str(pred_dir), str(tmp_path / "summary.json"), SimpleITKIO(),
                                       ".nii.gz", [1, 2], num_processes=1)
    ours = anchor_metrics(score_cases(find_result(str(pred_dir), ref_dir, chill=True)))
    assert ours["foreground_mean"] == pytest.approx(theirs["foreground_mean"]["Dice"], abs=1e-12)
    preds = [sitk.GetArrayFromImage(sitk.ReadImage(str(pred_dir / f"{c}.nii.gz"))) for c in cases[1::2]]
    refs = [sitk.GetArrayFromImage(sitk.ReadImage(str(ref_dir / f"{c}.nii.gz"))) for c in cases[1::2]]
    p, g = np.concatenate([x.ravel() == 2 for x in preds]), np.concatenate([x.ravel() == 2 for x in refs])
    assert ours["global_dice"]["tumor"] == pytest.approx(2 * (p & g).sum() / (p.sum() + g.sum()))


def test_cost_columns_from_a_benchmark_json(fake_results, tmp_path, monkeypatch, capsys):
    from nnunet_dyntransnet.evaluation.cli import main

    base, cases, trainers = fake_results
    for key, value in _env(base).items():
        monkeypatch.setenv(key, value)
    tdirs = [base / "results" / "Dataset950_Fake" / f"{t}__nnUNetPlans__3d_fullres" for t in trainers]
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"device_name": "NVIDIA H200", "patch_size": [128, 128, 128], "batch_size": 2,
                                 "dtype": "bf16", "results": [
                                     {"network": "PlainConvUNet", "parameters": 31.2e6, "train_step_ratio": 1.0,
                                      "peak_memory_ratio": 1.0},
                                     {"network": "DynTransNet", "parameters": 21.5e6, "train_step_ratio": 1.62,
                                      "peak_memory_ratio": 2.04}]}))
    assert main([*map(str, tdirs), "--out", str(tmp_path / "r"), "--benchmark", str(bench), "-np", "1"]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| DynTransNet | 21.5 | 1.62 | 2.04 |" in md  # the full model's row; the ablation row has no benchmark
    assert "NVIDIA H200, patch 128x128x128, batch 2, bf16" in md
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["costs"][trainers[1]]["network"] == "DynTransNet"
    # issue 27: report.md is its summary's rendering, cost columns included, so a committed report can be checked
    # against its summary (tests/test_docs_figures.py)
    from nnunet_dyntransnet.evaluation.tables import report_from_summary

    assert report_from_summary(summary) == md
    # issue 18, case 18: a benchmark of another plan is refused (the trainer folder's plans.json names its patch)
    plans = {"configurations": {"3d_fullres": {"patch_size": [32, 64, 64]}}}
    for t in tdirs:
        (t / "plans.json").write_text(json.dumps(plans))
    assert main([*map(str, tdirs), "--out", str(tmp_path / "r3"), "--benchmark", str(bench), "-np", "1"]) == 2
    err = capsys.readouterr().err
    assert "measured patch 128x128x128, but" in err and "3d_fullres with patch 32x64x64" in err, err
    plans["configurations"]["3d_fullres"]["patch_size"] = [128, 128, 128]
    for t in tdirs:
        (t / "plans.json").write_text(json.dumps(plans))
    assert main([*map(str, tdirs), "--out", str(tmp_path / "r3"), "--benchmark", str(bench), "-np", "1"]) == 0
    # issue 28, case 9: a benchmark of another plan with the same patch (other widths), and an incomplete one
    plans["configurations"]["3d_fullres"]["architecture"] = {
        "network_class_name": "x", "arch_kwargs": {"features_per_stage": [32, 64, 128]}, "_kw_requires_import": []}
    for t in tdirs:
        (t / "plans.json").write_text(json.dumps(plans))
    measured = json.loads(bench.read_text())
    bench.write_text(json.dumps({**measured, "features_per_stage": [8, 16, 32]}))
    assert main([*map(str, tdirs), "--out", str(tmp_path / "r4"), "--benchmark", str(bench), "-np", "1"]) == 2
    err = capsys.readouterr().err
    assert "measured widths [8, 16, 32], but" in err and "with widths [32, 64, 128]" in err, err
    bench.write_text(json.dumps({**measured, "features_per_stage": [32, 64, 128], "complete": False}))
    assert main([*map(str, tdirs), "--out", str(tmp_path / "r4"), "--benchmark", str(bench), "-np", "1"]) == 2
    assert "is marked incomplete" in capsys.readouterr().err and not (tmp_path / "r4").exists()
    bench.write_text(json.dumps({**measured, "features_per_stage": [32, 64, 128], "complete": True}))
    assert main([*map(str, tdirs), "--out", str(tmp_path / "r4"), "--benchmark", str(bench), "-np", "1"]) == 0
    bench.write_text(json.dumps({"results": [{"network": "SwinUNETR"}]}))
    assert main([*map(str, tdirs), "--out", str(tmp_path / "r2"), "--benchmark", str(bench), "-np", "1"]) == 2
    assert "none of this report's trainers" in capsys.readouterr().err
    bench.write_text("{not json")
    assert main([*map(str, tdirs), "--out", str(tmp_path / "r2"), "--benchmark", str(bench), "-np", "1"]) == 2
    assert "not a dyntransnet_benchmark --out JSON" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()


def test_confidence_intervals_print_unambiguously():
    """"(-0.20-0.47)" read as a range or a subtraction when a bound is negative; brackets and a comma do not."""
    from nnunet_dyntransnet.evaluation.tables import _fmt

    entry = {"mean": 0.0013, "sd": 0.0031, "ci_low": -0.0020, "ci_high": 0.0047}
    assert _fmt(entry, "dice", ci=True) == "0.13 ± 0.31 [0.00, 0.47]"
    # issue 27: with two cases the t interval of tumor Dice was printed as [-176.70, 232.94]; it is clipped to the
    # metric's range and says how many cases it rests on
    two = {"mean": 0.28, "sd": 0.23, "ci_low": -1.7670, "ci_high": 2.3294, "n": 2}
    assert _fmt(two, "dice", ci=True) == "28.00 ± 23.00 [0.00, 100.00; n=2]"
    assert _fmt({**two, "mean": 5.0, "ci_low": -3.0, "ci_high": 13.0}, "hd95", ci=True) == "5.00 ± 0.23 [0.00, 13.00; n=2]"


def test_surface_distances_through_the_command_use_each_axis_spacing(tmp_path):
    """Issue 27: reading the label's spacing in SimpleITK's (x, y, z) order instead of the array's (z, y, x) made
    HD95 and ASD wrong on every anisotropic scan, and no test passed through read_label. A square one slice thick,
    predicted one slice off: every surface voxel lies one slice, 2.5 mm, from the reference (0.8 mm in-plane)."""
    import csv
    import json as _json

    from nnunet_helpers import write_volume

    from nnunet_dyntransnet.evaluation import cli

    ds = tmp_path / "raw" / "Dataset961_Spacing"
    truth = np.zeros((8, 16, 16), np.uint8)
    truth[3, 4:12, 4:12] = 1
    pred = np.zeros_like(truth)
    pred[4, 4:12, 4:12] = 1
    write_volume(ds / "labelsTr" / "c0.nii.gz", truth, spacing=(0.8, 0.8, 2.5))
    write_volume(tmp_path / "pred" / "c0.nii.gz", pred, spacing=(0.8, 0.8, 2.5))
    (ds / "dataset.json").write_text(_json.dumps({"labels": {"background": 0, "liver": 1}, "file_ending": ".nii.gz"}))
    assert cli.main([str(tmp_path / "pred"), "--labels", str(ds / "labelsTr"), "--out", str(tmp_path / "r"),
                     "-np", "1"]) == 0
    rows = list(csv.DictReader((tmp_path / "r" / "metrics_per_case.csv").open()))
    (liver,) = [r for r in rows if r["class"] == "liver"]
    assert float(liver["hd95"]) == pytest.approx(2.5, abs=1e-6) and float(liver["asd"]) == pytest.approx(2.5, abs=1e-6)


def test_paired_difference_compares_the_same_cases():
    """A tumor-free case that one trainer leaves empty (Dice undefined) and the other marks (Dice 0): the difference
    of the two means counts it for one trainer only; the paired difference leaves it out for both."""
    from nnunet_dyntransnet.evaluation.tables import trainer_statistics

    truth = np.zeros((4, 8, 8), np.uint8)
    truth[1:3, 2:6, 2:6] = 1
    with_tumor = truth.copy()
    with_tumor[2, 3:5, 3:5] = 2
    marked = truth.copy()
    marked[0, 0, 0] = 2  # one false-positive voxel in the tumor-free case
    spacing = (1.0, 1.0, 1.0)
    grown = with_tumor.copy()
    grown[2, 2:6, 3:5] = 2
    scores = {
        "baseline": {"a": case_metrics(with_tumor, with_tumor, spacing), "b": case_metrics(truth, truth, spacing)},
        "other": {"a": case_metrics(grown, with_tumor, spacing), "b": case_metrics(marked, truth, spacing)},
    }
    s = trainer_statistics(scores, "baseline")["other"]["tumor"]["dice"]
    assert s["n_pairs"] == 1 and s["n"] == 2  # case b: undefined for the baseline, 0 for the other
    assert s["mean_difference"] == pytest.approx(scores["other"]["a"]["tumor"]["dice"] - 1.0)


def test_a_row_of_an_earlier_report_is_paired_as_if_scored_again(fake_results, tmp_path, monkeypatch, capsys):
    """--scored TRAINER=REPORT: the earlier report's row, restricted to this report's cases, gives the same
    statistics as scoring its predictions again; a row scored against other references is refused. In-process
    (the command's own main): seven reports through subprocesses cost a minute of imports."""
    from nnunet_dyntransnet.evaluation.cli import main
    from nnunet_dyntransnet.evaluation.tables import report_from_summary

    base, cases, trainers = fake_results
    tdirs = [base / "results" / "Dataset950_Fake" / f"{t}__nnUNetPlans__3d_fullres" for t in trainers]
    for k, v in _env(base).items():
        if k.startswith("nnUNet_"):
            monkeypatch.setenv(k, v)

    def report(*args):
        code = main([*map(str, args), "-np", "1"])
        return code, capsys.readouterr().err

    earlier, again = tmp_path / "earlier", tmp_path / "again"
    assert report(*tdirs, "--out", earlier, "--baseline", trainers[0])[0] == 0
    # fold 0 of the second trainer, against the first trainer's row of the earlier report (both folds); --chill:
    # this fixture has no splits_final.json, so a fold alone would miss the other fold's references
    assert report(tdirs[1] / "fold_0", "--scored", f"{trainers[0]}={earlier}", "--out", again, "--chill")[0] == 0
    assert report(tdirs[0] / "fold_0", tdirs[1] / "fold_0", "--out", tmp_path / "fresh", "--chill")[0] == 0
    got, want = (json.loads((d / "summary.json").read_text()) for d in (again, tmp_path / "fresh"))
    assert list(got["per_case"]) == trainers and got["baseline"] == trainers[0]  # the earlier row first
    assert sorted(got["per_case"][trainers[0]]) == cases[0::2]  # restricted to the cases scored here
    assert got["statistics"] == want["statistics"] and got["folds"] == want["folds"]
    md = (again / "report.md").read_text()
    assert f"{trainers[0]} from {earlier / 'summary.json'}" in md and md == report_from_summary(got)

    # the same row with one reference voxel count changed: scored against other labels, refused, nothing written
    edited = json.loads((earlier / "summary.json").read_text())
    edited["per_case"][trainers[0]]["fake_002"]["liver"]["n_ref"] += 1
    (tmp_path / "edited").mkdir()
    (tmp_path / "edited" / "summary.json").write_text(json.dumps(edited))
    code, err = report(tdirs[1] / "fold_0", "--scored", f"{trainers[0]}={tmp_path / 'edited'}", "--out",
                       tmp_path / "refused", "--chill")
    assert code == 2 and "fake_002" in err and "reference voxels of liver" in err
    code, err = report(tdirs[1], "--scored", f"nnUNetTrainerNope={earlier}", "--out", tmp_path / "refused")
    assert code == 2 and "has no row nnUNetTrainerNope" in err and trainers[0] in err
    code, err = report(tdirs[1], "--scored", f"{trainers[1]}={earlier}", "--out", tmp_path / "refused")
    assert code == 2 and "two rows are named" in err
    # the earlier report is this report's input: never replaced, even with --overwrite
    code, err = report(tdirs[1], "--scored", f"{trainers[0]}={earlier}", "--out", earlier, "--overwrite")
    assert code == 2 and "never writes there" in err and (earlier / "report.md").is_file()
    assert not (tmp_path / "refused").exists()
