"""End to end through nnU-Net's own commands, as a user runs them, on a tiny synthetic dataset.

plan_and_preprocess -> train 3d_fullres (then resume with --c) -> train 2d -> predict ->
export_model_to_zip -> install_pretrained_model_from_zip -> predict; nnU-Net's cascade: train
3d_lowres -> train 3d_cascade_fullres on its predictions -> find_best_configuration over 2d,
3d_fullres and the cascade with ensembles -> predict 3d_lowres then the cascade with
-prev_stage_predictions -> nnUNetv2_ensemble -> nnUNetv2_apply_postprocessing; and the ONNX path:
dyntransnet_export_onnx -> dyntransnet_predict_onnx, against nnUNetv2_predict.
Uses ``nnUNetTrainerDynTransNetTest`` (tests/nnunet_test_trainers): the real trainer, narrow and short.
"""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import TINY_ID as DATASET_ID
from nnunet_helpers import nnunet_env, run_command

pytestmark = pytest.mark.slow

TRAINER = "nnUNetTrainerDynTransNetTest"
RESULTS = f"Dataset{DATASET_ID:03d}_Tiny"


@pytest.fixture(scope="module")
def workspace(tiny_dataset):
    """The shared planned dataset (conftest.py); nnUNetv2_plan_and_preprocess ran there once."""
    return tiny_dataset.base, tiny_dataset.raw, tiny_dataset.env


@pytest.fixture(scope="module")
def trained_3d(workspace):
    base, raw, env = workspace
    # the first run's final validation is left out: the resumed run validates the same fold at its end
    first = run_command(["nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", TRAINER, "-device", "cpu"],
                        {**env, "DYNTRANSNET_TEST_EPOCHS": "1", "DYNTRANSNET_TEST_SKIP_VALIDATION": "1"})
    # --npz: the final validation keeps the probabilities, which find_best_configuration's ensembles average
    resumed = run_command(["nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", TRAINER, "-device", "cpu",
                           "--c", "--npz"], {**env, "DYNTRANSNET_TEST_EPOCHS": "2"})
    fold = base / "results" / RESULTS / f"{TRAINER}__nnUNetPlans__3d_fullres" / "fold_0"
    return fold, first, resumed


def _configurations(base: Path) -> dict:
    """The configurations of the shared dataset's nnUNetPlans.json."""
    return json.loads((base / "preprocessed" / RESULTS / "nnUNetPlans.json").read_text())["configurations"]


def _epochs(log: str):
    return [int(e) for e in re.findall(r"Epoch (\d+)\n", log)]


def test_train_and_resume(trained_3d):
    fold, first, resumed = trained_3d
    assert "Could not find requested nnunet trainer" not in first + resumed
    assert _epochs(first) == [0]
    assert _epochs(resumed) == [1], "--c must continue after the finished epoch, not start over"
    # nnU-Net's poly schedule continues where it stopped: epoch 1 of 2 at 1e-2 * (1 - 1/2) ** 0.9
    assert f"Current learning rate: {round(1e-2 * 0.5 ** 0.9, 5)}" in resumed, "the schedule continues at epoch 1"
    assert (fold / "checkpoint_final.pth").is_file()
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    assert set(summary["mean"]) == {"1", "2"}
    import torch

    checkpoint = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["current_epoch"] == 2
    assert checkpoint["trainer_name"] == TRAINER
    assert any(".attn.bias_proj." in k for k in checkpoint["network_weights"])


@pytest.fixture(scope="module")
def trained_2d(workspace):
    base, raw, env = workspace
    out = run_command(["nnUNetv2_train", str(DATASET_ID), "2d", "0", "-tr", TRAINER, "-device", "cpu", "--npz"],
                      {**env, "DYNTRANSNET_TEST_EPOCHS": "1"})
    return base / "results" / RESULTS / f"{TRAINER}__nnUNetPlans__2d" / "fold_0", out


def test_train_2d(trained_2d):
    fold, out = trained_2d
    assert "Mean Validation Dice" in out  # DynTransNet 2D through nnU-Net's sliding window over the volumes
    assert (fold / "checkpoint_final.pth").is_file()


def _assert_predictions_match_inputs(pred_dir: Path, images: Path):
    inputs = sorted(images.glob("*_0000.nii.gz"))
    assert inputs
    for image_file in inputs:
        pred_file = pred_dir / image_file.name.replace("_0000.nii.gz", ".nii.gz")
        assert pred_file.is_file(), f"no prediction for {image_file.name}"
        image, pred = sitk.ReadImage(str(image_file)), sitk.ReadImage(str(pred_file))
        assert pred.GetSize() == image.GetSize()
        assert np.allclose(pred.GetSpacing(), image.GetSpacing())
        assert np.allclose(pred.GetOrigin(), image.GetOrigin())
        assert np.allclose(pred.GetDirection(), image.GetDirection())
        assert set(np.unique(sitk.GetArrayFromImage(pred))) <= {0, 1, 2}


@pytest.fixture(scope="module")
def predicted(workspace, trained_3d, tmp_path_factory):
    """nnUNetv2_predict of the test cases with the trained fold (test-time mirroring on, nnU-Net's default)."""
    base, raw, env = workspace
    out_dir = tmp_path_factory.mktemp("pred") / "pred"
    run_command(["nnUNetv2_predict", "-i", str(raw / "imagesTs"), "-o", str(out_dir), "-d", str(DATASET_ID),
                 "-c", "3d_fullres", "-f", "0", "-tr", TRAINER, "-device", "cpu", "-npp", "1", "-nps", "1",
                 "--save_probabilities"], env)  # the probabilities: nnUNetv2_ensemble (below) averages them
    return out_dir


def test_predict(workspace, predicted):
    _assert_predictions_match_inputs(predicted, workspace[1] / "imagesTs")


def test_onnx_export_and_predict_agree_with_nnunet(workspace, trained_3d, predicted, tmp_path, monkeypatch, capsys):
    """dyntransnet_export_onnx, then dyntransnet_predict_onnx with nothing but the model and its sidecar (no
    nnUNet_results): the same labels as nnUNetv2_predict (>= 99.9% of voxels), the same geometry; then bad input."""
    from nnunet_dyntransnet.inference.export import main as export_main
    from nnunet_dyntransnet.inference.predict import main as predict_main

    base, raw, env = workspace
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    model = tmp_path / "model" / "tiny.onnx"
    model.parent.mkdir()
    assert export_main(["-d", str(DATASET_ID), "-c", "3d_fullres", "-f", "0", "-tr", TRAINER, "-o", str(model)]) == 0
    sidecar = json.loads(model.with_suffix(".json").read_text())
    assert sidecar["patch_size"] == sidecar["plans"]["configurations"]["3d_fullres"]["patch_size"]
    assert sidecar["mirroring_axes"] == [0, 1, 2] and sidecar["num_input_channels"] == 1
    assert sidecar["normalization_schemes"] == ["CTNormalization"] and sidecar["labels"]["tumor"] == 2
    import onnx

    graph_input = onnx.load(str(model)).graph.input[0].type.tensor_type.shape.dim
    assert graph_input[0].dim_param and not graph_input[0].dim_value, "the batch axis must be dynamic"

    out = tmp_path / "onnx_pred"
    no_results = {k: v for k, v in env.items() if k != "nnUNet_results"}
    run_command(["dyntransnet_predict_onnx", "-i", str(raw / "imagesTs"), "-o", str(out), "-m", str(model),
                 "-npp", "1", "-nps", "1"], no_results)
    _assert_predictions_match_inputs(out, raw / "imagesTs")
    for theirs in sorted(predicted.glob("*.nii.gz")):
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(out / theirs.name)))
        b = sitk.GetArrayFromImage(sitk.ReadImage(str(theirs)))
        assert (a == b).mean() >= 0.999, theirs.name

    # bad input: each refused with exit 2 and a message naming the file and what to do; nothing in -o
    def refused(command, argv, *phrases):
        assert command(argv) == 2
        err = capsys.readouterr().err
        assert all(p in err for p in phrases), err

    never = tmp_path / "never"
    args = ["-o", str(never), "-npp", "1", "-nps", "1"]
    refused(export_main, ["-d", str(DATASET_ID), "-f", "0", "-tr", TRAINER, "-chk", "missing.pth", "-o",
                          str(tmp_path / "x.onnx")], "missing.pth: no such checkpoint", "-chk")
    refused(export_main, ["-d", str(DATASET_ID), "-f", "0", "-tr", TRAINER, "-o", str(model)], "exists", "--overwrite")
    refused(export_main, ["-d", str(DATASET_ID), "-c", "3d_cascade_fullres", "-f", "0", "-tr", TRAINER, "-o",
                          str(tmp_path / "x.onnx")], "previous stage's segmentation", "export 3d_fullres, 3d_lowres")
    lone = tmp_path / "lone" / "tiny.onnx"
    lone.parent.mkdir()
    lone.write_bytes(model.read_bytes())
    refused(predict_main, ["-i", str(raw / "imagesTs"), *args, "-m", str(lone)], "tiny.json: missing")
    lone.with_suffix(".json").write_text(model.with_suffix(".json").read_text())
    lone.write_bytes(model.read_bytes() + b"\\0")
    refused(predict_main, ["-i", str(raw / "imagesTs"), *args, "-m", str(lone)], "written for another model")
    two_channels = tmp_path / "two_channels"
    two_channels.mkdir()
    case = sorted((raw / "imagesTs").glob("*_0000.nii.gz"))[0]
    (two_channels / case.name).write_bytes(case.read_bytes())
    (two_channels / case.name.replace("_0000", "_0001")).write_bytes(case.read_bytes())
    refused(predict_main, ["-i", str(two_channels), *args, "-m", str(model)], "has channels [0, 1]", "takes 1")
    assert not never.exists() and not list(tmp_path.glob(".never*")), "nothing half-written"
    assert not (tmp_path / "x.onnx").exists() and not list(tmp_path.glob(".x.onnx*"))


def test_onnx_export_and_predict_of_a_2d_model_agree_with_nnunet(workspace, trained_2d, tmp_path, monkeypatch):
    """Issue 18, case 10: every 2d export was refused ("fixed batch size (1)"); a 2d model exports with a dynamic
    batch and predicts the volumes slice by slice as nnUNetv2_predict -c 2d does."""
    from nnunet_dyntransnet.inference.export import main as export_main

    base, raw, env = workspace
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    model = tmp_path / "tiny2d.onnx"
    assert export_main(["-d", str(DATASET_ID), "-c", "2d", "-f", "0", "-tr", TRAINER, "-o", str(model)]) == 0
    assert len(json.loads(model.with_suffix(".json").read_text())["patch_size"]) == 2
    theirs, ours = tmp_path / "nnunet", tmp_path / "onnx"
    run_command(["nnUNetv2_predict", "-i", str(raw / "imagesTs"), "-o", str(theirs), "-d", str(DATASET_ID), "-c", "2d",
                 "-f", "0", "-tr", TRAINER, "-device", "cpu", "-npp", "1", "-nps", "1"], env)
    run_command(["dyntransnet_predict_onnx", "-i", str(raw / "imagesTs"), "-o", str(ours), "-m", str(model),
                 "-npp", "1", "-nps", "1"], env)
    _assert_predictions_match_inputs(ours, raw / "imagesTs")
    for f in sorted(theirs.glob("*.nii.gz")):
        a, b = (sitk.GetArrayFromImage(sitk.ReadImage(str(d / f.name))) for d in (ours, theirs))
        assert (a == b).mean() >= 0.999, f.name


def test_report_on_a_trained_fold(workspace, trained_3d, tmp_path):
    """dyntransnet_report on nnU-Net's own output agrees with the summary.json nnU-Net wrote after validation."""
    base, raw, env = workspace
    fold, _, _ = trained_3d
    run_command(["dyntransnet_report", str(fold.parent), "--out", str(tmp_path / "report"), "-np", "1"], env)
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    theirs = json.loads((fold / "validation" / "summary.json").read_text())
    stats = summary["statistics"][TRAINER]
    for label, cls in (("1", "liver"), ("2", "tumor")):
        if theirs["mean"][label]["Dice"] is None or np.isnan(theirs["mean"][label]["Dice"]):
            assert stats[cls]["dice"]["mean"] is None
        else:
            assert stats[cls]["dice"]["mean"] == pytest.approx(theirs["mean"][label]["Dice"], abs=1e-9)
    assert len(summary["per_case"][TRAINER]) == len(theirs["metric_per_case"])
    # the curves come from nnU-Net's training logs of both runs (first and resumed): epochs 0 and 1
    figures = tmp_path / "report" / "figures"
    assert (figures / f"training_curves_{TRAINER}.png").is_file()
    assert (figures / f"overlays_{TRAINER}.png").is_file()
    from nnunet_dyntransnet.evaluation.results import read_training_log

    epochs = read_training_log(sorted(fold.glob("training_log_*.txt")))
    assert sorted(epochs) == [0, 1] and all({"train_loss", "val_loss", "pseudo_dice"} <= set(v) for v in epochs.values())


def test_export_install_and_predict(workspace, trained_3d, tmp_path):
    base, raw, env = workspace
    archive = tmp_path / "model.zip"
    run_command(["nnUNetv2_export_model_to_zip", "-d", str(DATASET_ID), "-o", str(archive), "-c", "3d_fullres",
                 "-tr", TRAINER, "-f", "0"], env)
    other_results = tmp_path / "installed_results"
    other_results.mkdir()
    env2 = nnunet_env(base, results=other_results)
    run_command(["nnUNetv2_install_pretrained_model_from_zip", str(archive)], env2)
    out_dir = tmp_path / "pred_installed"
    run_command(["nnUNetv2_predict", "-i", str(raw / "imagesTs"), "-o", str(out_dir), "-d", str(DATASET_ID),
                 "-c", "3d_fullres", "-f", "0", "-tr", TRAINER, "-device", "cpu", "-npp", "1", "-nps", "1",
                 "--disable_tta"], env2)
    _assert_predictions_match_inputs(out_dir, raw / "imagesTs")


def test_a_baseline_trains_and_predicts_with_its_adapted_patch(workspace, tmp_path):
    """SwinUNETR needs multiples of 32: the plan's 3d_fullres patch is rounded up to them in training and prediction."""
    base, raw, env = workspace
    planned = _configurations(base)["3d_fullres"]["patch_size"]
    trainer = "nnUNetTrainerSwinUNETRTest"
    # nnU-Net's final validation (sliding window with mirroring over the validation cases) is left out: the
    # prediction below runs the same sliding window with the adapted patch
    out = run_command(["nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", trainer, "-device", "cpu"],
                      {**env, "DYNTRANSNET_TEST_EPOCHS": "1", "DYNTRANSNET_TEST_SKIP_VALIDATION": "1"})
    used = json.loads(re.search(rf"patch {re.escape(str(planned))} -> (\[[\d, ]+\])", out).group(1))
    # multiples of 32 covering the plan's patch, at least two 32-voxel cells (SwinUNETR's deepest stage)
    assert all(u % 32 == 0 and u >= p for u, p in zip(used, planned)) and np.prod(used) >= 2 * 32 ** 3, used
    assert "final validation skipped" in out
    pred = tmp_path / "pred"
    run_command(["nnUNetv2_predict", "-i", str(raw / "imagesTs"), "-o", str(pred), "-d", str(DATASET_ID),
                 "-c", "3d_fullres", "-f", "0", "-tr", trainer, "-device", "cpu", "-npp", "1", "-nps", "1",
                 "--disable_tta"], env)
    _assert_predictions_match_inputs(pred, raw / "imagesTs")


# nnU-Net's cascade. The shared dataset is planned for a small GPU-memory target (conftest.py), so nnU-Net's
# planner finds the 3d_fullres patch too small for the images and adds 3d_lowres and 3d_cascade_fullres, as it
# does for LiTS-sized CTs at its default target.
@pytest.fixture(scope="module")
def cascade(workspace):
    """3d_lowres trained on all cases (its final validation writes every case's segmentation for the next
    stage; with 5 folds, each fold writes its validation cases), then 3d_cascade_fullres fold 0 on them."""
    base, raw, env = workspace
    short = {**env, "DYNTRANSNET_TEST_EPOCHS": "1"}
    run_command(["nnUNetv2_train", str(DATASET_ID), "3d_lowres", "all", "-tr", TRAINER, "-device", "cpu"], short)
    cascade = run_command(["nnUNetv2_train", str(DATASET_ID), "3d_cascade_fullres", "0", "-tr", TRAINER, "-device",
                           "cpu", "--npz"], short)
    return base / "results" / RESULTS, cascade


def test_lowres_then_cascade_trains_on_its_predictions(workspace, cascade):
    results, out = cascade
    plans = _configurations(workspace[0])
    assert plans["3d_cascade_fullres"]["previous_stage"] == "3d_lowres"
    assert plans["3d_lowres"]["spacing"] != plans["3d_fullres"]["spacing"]
    next_stage = results / f"{TRAINER}__nnUNetPlans__3d_lowres" / "predicted_next_stage" / "3d_cascade_fullres"
    training_cases = sorted(p.name[:-len(".nii.gz")] for p in (workspace[1] / "labelsTr").glob("*.nii.gz"))
    assert sorted(p.name.split(".")[0] for p in next_stage.iterdir()) == training_cases  # one file per case
    import torch

    fold = results / f"{TRAINER}__nnUNetPlans__3d_cascade_fullres" / "fold_0"
    weights = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)["network_weights"]
    # the cascade's input: the image and the previous stage's segmentation, one channel per foreground label
    assert weights["encoder.stem.0.0.weight"].shape[1] == 1 + 2
    assert "Mean Validation Dice" in out and (fold / "validation" / "summary.json").is_file()


@pytest.fixture(scope="module")
def best_configuration(workspace, trained_3d, trained_2d, cascade):
    base, raw, env = workspace
    out = run_command(["nnUNetv2_find_best_configuration", str(DATASET_ID), "-c", "2d", "3d_fullres",
                       "3d_cascade_fullres", "-tr", TRAINER, "-f", "0", "-np", "1"], env)
    return json.loads((base / "results" / RESULTS / "inference_information.json").read_text()), out


def test_find_best_configuration_with_ensembles(workspace, best_configuration):
    info, out = best_configuration
    configurations = {f"{TRAINER}__nnUNetPlans__{c}" for c in ("2d", "3d_fullres", "3d_cascade_fullres")}
    ensembles = {k for k in info["all_results"] if k.startswith("ensemble___")}
    assert configurations <= set(info["all_results"]) and len(ensembles) == 3, info["all_results"]
    assert all(0 <= v <= 1 for v in info["all_results"].values())
    assert Path(info["best_model_or_ensemble"]["postprocessing_file"]).is_file()
    instructions = (workspace[0] / "results" / RESULTS / "inference_instructions.txt").read_text()
    assert TRAINER in instructions and "nnUNetv2_apply_postprocessing" in instructions


def test_cascade_predicts_then_ensembles_and_postprocesses(workspace, cascade, predicted, best_configuration, tmp_path):
    """predict 3d_lowres -> predict 3d_cascade_fullres -prev_stage_predictions -> nnUNetv2_ensemble with the
    3d_fullres prediction -> nnUNetv2_apply_postprocessing with what find_best_configuration chose."""
    base, raw, env = workspace
    predict = ["nnUNetv2_predict", "-i", str(raw / "imagesTs"), "-d", str(DATASET_ID), "-tr", TRAINER,
               "-device", "cpu", "-npp", "1", "-nps", "1", "--disable_tta"]
    lowres, cascaded = tmp_path / "lowres", tmp_path / "cascade"
    run_command([*predict, "-o", str(lowres), "-c", "3d_lowres", "-f", "all"], env)
    run_command([*predict, "-o", str(cascaded), "-c", "3d_cascade_fullres", "-f", "0", "-prev_stage_predictions",
                 str(lowres), "--save_probabilities"], env)
    _assert_predictions_match_inputs(lowres, raw / "imagesTs")
    _assert_predictions_match_inputs(cascaded, raw / "imagesTs")

    ensembled, postprocessed = tmp_path / "ensemble", tmp_path / "postprocessed"
    run_command(["nnUNetv2_ensemble", "-i", str(predicted), str(cascaded), "-o", str(ensembled), "-np", "1"], env)
    _assert_predictions_match_inputs(ensembled, raw / "imagesTs")
    for case in sorted(ensembled.glob("*.nii.gz")):
        name = case.name[:-len(".nii.gz")]
        mean = sum(np.load(folder / f"{name}.npz")["probabilities"] for folder in (predicted, cascaded)) / 2
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(case)))
        assert np.array_equal(labels, mean.argmax(0)), f"{name}: the ensemble is the mean of both probabilities"

    best = best_configuration[0]["best_model_or_ensemble"]
    run_command(["nnUNetv2_apply_postprocessing", "-i", str(ensembled), "-o", str(postprocessed), "-pp_pkl_file",
                 best["postprocessing_file"], "-np", "1", "-plans_json", best["some_plans_file"]], env)
    _assert_predictions_match_inputs(postprocessed, raw / "imagesTs")
    for case in sorted(ensembled.glob("*.nii.gz")):
        before = sitk.GetArrayFromImage(sitk.ReadImage(str(case)))
        after = sitk.GetArrayFromImage(sitk.ReadImage(str(postprocessed / case.name)))
        assert np.all((after == before) | (after == 0)), "postprocessing only removes components"
