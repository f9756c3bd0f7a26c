"""DynTransNet's planner: patch and batch sized by its memory model for 8 / 24 / 40 GB, data shared with nnU-Net.

Planning needs only the dataset fingerprint, so a LiTS-like fingerprint (20 CTs of
430x512x512 voxels at 1.0 x 0.77 x 0.77 mm) is written by hand; the preprocessing path runs
on the tiny synthetic dataset of the end-to-end tests.
"""
import json
import subprocess
from math import prod
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_helpers import nnunet_env, run_command

LITS_LIKE = 903


@pytest.fixture(scope="module")
def lits_like(tmp_path_factory):
    base = tmp_path_factory.mktemp("planner")
    raw = base / "raw" / f"Dataset{LITS_LIKE}_LiTSLike"
    (raw / "imagesTr").mkdir(parents=True)
    (raw / "labelsTr").mkdir()
    n = 20
    tiny = sitk.GetImageFromArray(np.zeros((2, 2, 2), np.int16))
    for i in range(n):  # the planner lists the cases and probes one file's reader; it plans from the fingerprint
        sitk.WriteImage(tiny, str(raw / "imagesTr" / f"lits_{i:03d}_0000.nii.gz"))
        sitk.WriteImage(tiny, str(raw / "labelsTr" / f"lits_{i:03d}.nii.gz"))
    (raw / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1, "tumor": 2},
        "numTraining": n, "file_ending": ".nii.gz"}))
    pre = base / "preprocessed" / raw.name
    pre.mkdir(parents=True)
    (pre / "dataset_fingerprint.json").write_text(json.dumps({
        "spacings": [[1.0, 0.77, 0.77]] * n, "shapes_after_crop": [[430, 512, 512]] * n,
        "foreground_intensity_properties_per_channel": {"0": {
            "max": 400.0, "mean": 100.0, "median": 101.0, "min": -200.0, "percentile_00_5": -20.0,
            "percentile_99_5": 250.0, "std": 40.0}},
        "median_relative_size_after_cropping": 1.0}))
    env = nnunet_env(base)
    run_command(["nnUNetv2_plan_experiment", "-d", str(LITS_LIKE)], env)  # nnU-Net's default, for comparison
    for gb in ("8", "24", "40"):
        run_command(["dyntransnet_plan_and_preprocess", "-d", str(LITS_LIKE), "-gpu_memory_target", gb, "--no_pp"], env)
    return pre


def _config(pre: Path, plans: str, cfg: str = "3d_fullres") -> dict:
    return json.loads((pre / f"{plans}.json").read_text())["configurations"][cfg]


def test_presets_grow_with_memory(lits_like):
    patches = {p: _config(lits_like, p) for p in ("nnUNetDynTransNetMPlans", "nnUNetDynTransNetLPlans",
                                                  "nnUNetDynTransNetXLPlans")}
    volumes = [prod(c["patch_size"]) * c["batch_size"] for c in patches.values()]
    assert volumes == sorted(volumes) and volumes[0] < volumes[-1], patches
    default = _config(lits_like, "nnUNetPlans")
    m = patches["nnUNetDynTransNetMPlans"]
    # by default DynTransNet keeps less per voxel than nnU-Net's U-Net (0.88x at 128^3), so the same 8 GB buys more
    assert prod(m["patch_size"]) * m["batch_size"] > prod(default["patch_size"]) * default["batch_size"]
    # the table in docs/speed_and_memory.md ("Planner"): a change of the defaults that moves a patch fails here
    assert (default["patch_size"], default["batch_size"]) == ([128, 128, 128], 2)
    assert {p: (c["patch_size"], c["batch_size"]) for p, c in patches.items()} == {
        "nnUNetDynTransNetMPlans": ([128, 160, 128], 2), "nnUNetDynTransNetLPlans": ([160, 224, 224], 2),
        "nnUNetDynTransNetXLPlans": ([224, 256, 256], 2)}
    # docs/large_images.md quotes the 8 GB preset's patches (issue 27: it said 80x112x112 where this was 128x160x128)
    low = _config(lits_like, "nnUNetDynTransNetMPlans", "3d_lowres")
    quoted = (f"8 GB preset: 3d_fullres {'x'.join(map(str, m['patch_size']))}, 3d_lowres "
              f"{'x'.join(map(str, low['patch_size']))} at {' x '.join(f'{s:.2f}' for s in low['spacing'])} mm")
    doc = Path(__file__).resolve().parents[2] / "docs" / "large_images.md"
    assert quoted in " ".join(doc.read_text().split()), quoted
    for plans, c in patches.items():
        assert c["data_identifier"] == "nnUNetPlans_3d_fullres", "3d_fullres shares nnU-Net's preprocessed data"
        assert c["spacing"] == default["spacing"] and c["normalization_schemes"] == default["normalization_schemes"]
        # nnU-Net's planner logic adds the low-resolution stage and the cascade for CTs this large, here too;
        # the lowres data depend on the patch (its spacing), so they get the plans' own folder
        lowres, cascade = _config(lits_like, plans, "3d_lowres"), _config(lits_like, plans, "3d_cascade_fullres")
        assert lowres["data_identifier"] == f"{plans}_3d_lowres" and lowres["spacing"][0] > c["spacing"][0]
        assert cascade["previous_stage"] == "3d_lowres" and cascade["inherits_from"] == "3d_fullres"


@pytest.mark.parametrize("plans,gb", [("nnUNetDynTransNetMPlans", 8), ("nnUNetDynTransNetLPlans", 24),
                                      ("nnUNetDynTransNetXLPlans", 40)])
def test_planned_network_fits_its_target(lits_like, plans, gb, monkeypatch):
    """The network nnUNetTrainerDynTransNet builds from the plan (a real one with the options the trainer records,
    not the planner's meta-device estimate) is within nnU-Net's reference for the target, read from nnU-Net's
    planner."""
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from nnunet_dyntransnet.network import DynTransNet
    from nnunet_dyntransnet.trainers import nnUNetTrainerDynTransNet

    for key, value in nnunet_env(lits_like.parent.parent).items():
        monkeypatch.setenv(key, value)
    nnunet = ExperimentPlanner(LITS_LIKE, gb)
    reference = nnunet.UNet_reference_val_3d * gb / nnunet.UNet_reference_val_corresp_GB
    manager = PlansManager(json.loads((lits_like / f"{plans}.json").read_text()))
    for configuration in ("3d_lowres", "3d_fullres"):
        cm = manager.get_configuration(configuration)
        net = DynTransNet.from_plan(cm, 1, 3, True, **nnUNetTrainerDynTransNet.network_options_for(cm))
        per_sample = net.compute_conv_feature_map_size(cm.patch_size)
        assert per_sample <= reference, configuration
    # the leftover memory went to the batch, by nnU-Net's rule (at least its reference batch, at most 5% of the
    # dataset's voxels per batch)
    ref_bs = nnunet.UNet_reference_val_corresp_bs_3d
    cap = round(20 * 430 * 512 * 512 * nnunet.max_dataset_covered / prod(cm.patch_size))
    assert cm.batch_size == max(ref_bs, min(round(reference / per_sample * ref_bs), cap))


def test_plan_names_and_bad_target(tmp_path):
    from nnunet_dyntransnet.plans import plans_name_for

    assert plans_name_for(8) == "nnUNetDynTransNetMPlans" and plans_name_for(12) == "nnUNetDynTransNetPlans_12G"
    env = nnunet_env(tmp_path)
    proc = subprocess.run(["dyntransnet_plan_and_preprocess", "-d", "903", "-gpu_memory_target", "0"], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "positive" in proc.stderr
    proc = subprocess.run(["dyntransnet_plan_and_preprocess", "-d", "904"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "904" in proc.stderr


@pytest.mark.slow
def test_preprocessing_is_shared_with_nnunet(tiny_dataset):
    """After nnUNetv2_plan_and_preprocess (the shared dataset's), the DynTransNet plans reuse its 3d_fullres data;
    training runs with -p."""
    env, base = tiny_dataset.env, tiny_dataset.base
    data = base / "preprocessed" / "Dataset901_Tiny" / "nnUNetPlans_3d_fullres"
    before = {p.name: p.stat().st_mtime_ns for p in data.iterdir()}
    out = run_command(["dyntransnet_plan_and_preprocess", "-d", "901", "-c", "3d_fullres", "-np", "1",
                       "-gpu_memory_target", "24"], env)
    assert "reusing the preprocessed data" in out and "-p nnUNetDynTransNetLPlans" in out
    assert {p.name: p.stat().st_mtime_ns for p in data.iterdir()} == before, "nothing preprocessed twice"
    run_command(["nnUNetv2_train", "901", "3d_fullres", "0", "-tr", "nnUNetTrainerDynTransNetTest", "-p",
                 "nnUNetDynTransNetLPlans", "-device", "cpu"],
                {**env, "DYNTRANSNET_TEST_EPOCHS": "1", "DYNTRANSNET_TEST_SKIP_VALIDATION": "1"})
    assert (base / "results" / "Dataset901_Tiny" / "nnUNetTrainerDynTransNetTest__nnUNetDynTransNetLPlans__3d_fullres"
            / "fold_0" / "checkpoint_final.pth").is_file()


def test_nnunets_own_plans_are_never_replaced_unless_asked(lits_like, monkeypatch, capsys):
    """Issue 18, case 2: -overwrite_plans_name nnUNetPlans silently replaced nnU-Net's own plans."""
    from nnunet_dyntransnet.plans.cli import main

    for key, value in nnunet_env(lits_like.parent.parent).items():
        monkeypatch.setenv(key, value)
    theirs = lits_like / "nnUNetPlans.json"
    before = theirs.read_bytes()
    assert main(["-d", str(LITS_LIKE), "-overwrite_plans_name", "nnUNetPlans", "--no_pp"]) == 2
    err = capsys.readouterr().err
    assert "was written by ExperimentPlanner" in err and "--replace_plans_of_other_planners" in err, err
    assert theirs.read_bytes() == before
    # a plans file this planner wrote is its own to re-plan
    assert main(["-d", str(LITS_LIKE), "-gpu_memory_target", "8", "-overwrite_plans_name", "nnUNetDynTransNetMPlans",
                 "--no_pp"]) == 0


def test_a_target_too_small_for_the_dataset_says_the_smallest_that_works(lits_like, monkeypatch, capsys):
    """Issue 18, case 16: a traceback "DynTransNet needs at least 2 stages" after the fingerprint."""
    from nnunet_dyntransnet.plans.cli import main
    from nnunet_dyntransnet.plans.dyntransnet_planner import smallest_possible_target

    for key, value in nnunet_env(lits_like.parent.parent).items():
        monkeypatch.setenv(key, value)
    floor = smallest_possible_target()
    assert main(["-d", str(LITS_LIKE), "-gpu_memory_target", f"{floor * 1.01:.6g}", "--no_pp"]) == 2
    err = capsys.readouterr().err
    suggested = float(err.split("the smallest that plans")[1].split("about ")[1].split(" GB")[0])
    assert "too small for" in err and not list(lits_like.glob("nnUNetDynTransNetPlans_0.000*")), err
    assert main(["-d", str(LITS_LIKE), "-gpu_memory_target", f"{suggested * 1.05:.6g}", "--no_pp"]) == 0, \
        "the suggested target plans the dataset"
