"""One ownership rule for every command (utilities/ownership.py), tried on every installed console script.

The battery reads the package's console scripts from its entry points: a new command that is not in
``BATTERY`` fails :func:`test_every_console_script_is_in_the_battery`. Each command is run in-process against
the same hostile targets (an input, what holds it, what lies in it, ``.``, ``~``, nnU-Net's folders, a folder
or file of the user's, a link to one, a previous output with a user's file nested in it) and the whole tree
is compared before and after: a refused command exits non-zero and changes nothing.
"""
import json
import os
from importlib.metadata import distribution
from pathlib import Path

import numpy as np
import pytest

from nnunet_helpers import write_lits_source, write_volume
from nnunet_dyntransnet.utilities.ownership import Claim, OwnershipError, files_under, marked_files, write_marker


def _tree(root: Path):
    """Every path under ``root`` with its bytes (files) or link target; folders as None."""
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out.append((str(p.relative_to(root)), "link:" + os.readlink(p)))
        elif p.is_file():
            out.append((str(p.relative_to(root)), p.read_bytes()))
        else:
            out.append((str(p.relative_to(root)), None))
    return out


@pytest.fixture
def world(tmp_path, monkeypatch):
    """tmp/home (HOME), tmp/cwd (the current folder, with the user's notes), nnU-Net's three folders, a user's
    folder and file, and a link to each."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    for folder in (home, cwd, tmp_path / "user" / "deep"):
        folder.mkdir(parents=True)
    (home / "thesis.tex").write_text("mine")
    (cwd / "notes.txt").write_text("mine")
    (tmp_path / "user" / "deep" / "data.txt").write_text("mine")
    (tmp_path / "user.json").write_text('{"mine": true}')
    (tmp_path / "link_to_user").symlink_to(tmp_path / "user", target_is_directory=True)
    (tmp_path / "link_to_user.json").symlink_to(tmp_path / "user.json")
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (tmp_path / var).mkdir()
        (tmp_path / var / "keep.txt").write_text("mine")
        monkeypatch.setenv(var, str(tmp_path / var))
    monkeypatch.setenv("HOME", str(home))
    # libraries' caches (matplotlib, torch) go outside the compared tree
    caches = tmp_path.parent / f"{tmp_path.name}_caches"
    for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "MPLCONFIGDIR"):
        monkeypatch.setenv(var, str(caches / var))
    monkeypatch.chdir(cwd)
    return tmp_path


def _previous_output(folder: Path, command: str, files=("result.txt", "figures/a.png")) -> Path:
    """A folder ``command`` wrote (its marker lists ``files``), into which the user then put figures/mine.png."""
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("old output")
    write_marker(folder, command)
    (folder / "figures" / "mine.png").write_text("mine")
    return folder


def _folder_target(world: Path, kind: str, the_input: Path, command: str) -> Path:
    if kind == "nested_user_file":
        return _previous_output(world / "old_output", command)
    return {
        ".": Path("."), "~": world / "home", "nnunet_results": world / "nnUNet_results",
        "holds_nnunet": world, "input": the_input, "input_parent": the_input.parent,
        "inside_input": the_input / "sub", "user_folder": world / "user", "link_to_user": world / "link_to_user",
        "user_file": world / "user.json",
    }[kind]


FOLDER_TARGETS = [".", "~", "nnunet_results", "holds_nnunet", "input", "input_parent", "inside_input", "user_folder",
                  "link_to_user", "user_file", "nested_user_file"]
FILE_TARGETS = ["user_file", "link_to_user_file", "a_folder", "in_input"]


# ------------------------------------------------------------------ the commands, each against its hostile targets

def _predictions(world: Path) -> Path:
    """world/labels/c0.nii.gz and world/preds/c0.nii.gz: a prediction folder and its references."""
    label = np.zeros((4, 8, 8), np.uint8)
    label[1:3, 2:6, 2:6] = 1
    write_volume(world / "labels" / "c0.nii.gz", label)
    write_volume(world / "preds" / "c0.nii.gz", label)
    return world / "preds"


def run_report(world, kind):
    from nnunet_dyntransnet.evaluation import cli

    preds = _predictions(world)
    out = _folder_target(world, kind, preds, cli.COMMAND)
    return lambda: cli.main([str(preds), "--labels", str(world / "labels"), "--out", str(out), "--overwrite",
                             "-np", "1"])


def run_predict_onnx(world, kind):
    from nnunet_dyntransnet.inference import predict

    images = world / "images"
    write_volume(images / "a_0000.nii.gz", np.zeros((4, 8, 8), np.float32))
    (world / "model").mkdir()
    (world / "model" / "m.onnx").write_text("never read: the output is checked first")
    out = _folder_target(world, kind, images, predict.COMMAND)
    return lambda: predict.main(["-i", str(images), "-o", str(out), "-m", str(world / "model" / "m.onnx"),
                                 "--overwrite"])


def run_demo(world, kind):
    from nnunet_dyntransnet import demo

    out = _folder_target(world, kind, world / "user", demo.COMMAND)
    if kind in ("input", "input_parent", "inside_input"):
        # the demo reads nothing of the user's but nnU-Net's folders: its "input" is $nnUNet_results
        out = {"input": world / "nnUNet_results", "input_parent": world,
               "inside_input": world / "nnUNet_results"}[kind]
    return lambda: demo.main(["--out", str(out), "--minutes", "0.01", "--device", "cpu"])


def run_export_onnx(world, kind, tiny_fold):
    from nnunet_dyntransnet.inference import export

    model_folder = tiny_fold
    target = {"user_file": world / "user.onnx", "link_to_user_file": world / "link.onnx",
              "a_folder": world / "user.onnx", "in_input": model_folder / "plans.onnx"}[kind]
    if kind == "user_file":
        (world / "user.onnx").write_text("mine")
    elif kind == "link_to_user_file":
        (world / "link.json").symlink_to(world / "user.json")
    elif kind == "a_folder":
        (world / "user.json").unlink()
        (world / "user.json").mkdir()
    dataset, trainer_dir = model_folder.parent.name, model_folder.name
    trainer, plans, configuration = trainer_dir.split("__")
    return lambda: export.main(["-d", dataset, "-c", configuration, "-tr", trainer, "-p", plans, "-f", "0",
                                "-o", str(target), "--overwrite"])


def run_benchmark(world, kind):
    from nnunet_dyntransnet.benchmark import cli

    plans = world / "plans.json"
    plans.write_text("{}")
    target = {"user_file": world / "user.json", "link_to_user_file": world / "link_to_user.json",
              "a_folder": world / "user", "in_input": plans}[kind]
    argv = ["--device", "cpu", "--out", str(target), "--overwrite", "--networks", "PlainConvUNet", "--rounds", "1"] \
        + (["--plan", str(plans)] if kind == "in_input" else ["--patch", "16x32x32"])
    return lambda: _exit_code(cli.entry, argv)


def _exit_code(entry, argv):
    """An argparse-style command's exit status: its return value, or the code it exits with."""
    try:
        return entry(argv)
    except SystemExit as e:
        return e.code


def _dataset_with_user_notes(world: Path, folder: str) -> Path:
    """A dataset this plugin converted earlier (its dataset.json says so), with the user's notes inside."""
    ds = world / "nnUNet_raw" / folder
    (ds / "imagesTr").mkdir(parents=True)
    (ds / "imagesTr" / "x_0000.nii.gz").write_text("old")
    (ds / "dataset.json").write_text(json.dumps({"converted_by": "nnunet-dyntransnet"}))
    (ds / "my_notes.md").write_text("mine")
    return ds


def _release(path: Path, kind: str = "lits") -> Path:
    """A one-case release in LiTS's or ATLAS's layout at ``path``."""
    label = np.zeros((6, 12, 14), np.uint8)
    label[1:5, 2:9, 3:10] = 1
    if kind == "lits":
        return write_lits_source(path, [(np.zeros((6, 12, 14), np.int16), label, None, None)])
    write_volume(path / "imagesTr" / "im0.nii.gz", np.zeros((6, 12, 14), np.float32))
    write_volume(path / "labelsTr" / "lb0.nii.gz", label)
    return path


DATASET_TARGETS = ["release_inside_dataset", "dataset_inside_release", "user_notes_in_dataset"]


def _run_converter(world, kind, entry, folder, dataset_id, layout):
    if kind == "release_inside_dataset":  # issue 28, case 1: the release unpacked inside $nnUNet_raw/Dataset601_LiTS
        src = _release(world / "nnUNet_raw" / folder / "release", layout)
        (world / "nnUNet_raw" / folder / "my_notes.md").write_text("mine")
    elif kind == "dataset_inside_release":  # the release is $nnUNet_raw itself
        src = _release(world / "nnUNet_raw", layout)
    else:
        src = _release(world / "release", layout)
        _dataset_with_user_notes(world, folder)
    return lambda: entry([str(src), "-d", str(dataset_id), "--overwrite"])


def run_convert_lits(world, kind):
    from nnunet_dyntransnet.dataset_conversion.cli import convert_lits_entry

    return _run_converter(world, kind, convert_lits_entry, "Dataset601_LiTS", 601, "lits")


def run_convert_atlas(world, kind):
    from nnunet_dyntransnet.dataset_conversion.cli import convert_atlas_entry

    return _run_converter(world, kind, convert_atlas_entry, "Dataset602_ATLAS", 602, "atlas")


def run_make_phantom(world, kind):
    from nnunet_dyntransnet.dataset_conversion.phantom import main

    if kind != "user_notes_in_dataset":
        pytest.skip("the phantom reads no input")
    _dataset_with_user_notes(world, "Dataset991_LiverPhantomCT")
    return lambda: main(["-d", "991", "-n", "1", "--test", "0", "--overwrite"])


def run_protocol(world, kind):
    from nnunet_dyntransnet.protocol import cli as protocol

    out = _folder_target(world, kind, world / "nnUNet_results", "dyntransnet_report")
    return lambda: protocol.main(["phantom", "--trainers", "nnUNetTrainerDynTransNet", "--report-out", str(out),
                                  "--device", "cpu", "--dry-run"])


def run_plan_and_preprocess(world, kind):
    from nnunet_dyntransnet.plans import cli

    if kind != "nnunet_plans":
        pytest.skip("its only output is a plans file in $nnUNet_preprocessed, nnU-Net's convention")
    plans = world / "nnUNet_preprocessed" / "Dataset993_Safe" / "nnUNetPlans.json"
    plans.parent.mkdir(parents=True)
    plans.write_text(json.dumps({"plans_name": "nnUNetPlans", "experiment_planner_used": "ExperimentPlanner"}))
    ds = world / "nnUNet_raw" / "Dataset993_Safe"
    write_volume(ds / "imagesTr" / "a_0000.nii.gz", np.zeros((4, 8, 8), np.float32))
    write_volume(ds / "labelsTr" / "a.nii.gz", np.zeros((4, 8, 8), np.uint8))
    (ds / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1},
                                                 "numTraining": 1, "file_ending": ".nii.gz"}))
    return lambda: _exit_code(cli.main, ["-d", "993", "-gpu_memory_target", "24", "-overwrite_plans_name",
                                         "nnUNetPlans"])


BATTERY = {
    "dyntransnet_report": (run_report, FOLDER_TARGETS),
    "dyntransnet_predict_onnx": (run_predict_onnx, FOLDER_TARGETS),
    "dyntransnet_demo": (run_demo, FOLDER_TARGETS),
    # the protocol's report lies inside $nnUNet_results by default: "inside the input" is its normal place
    "dyntransnet_protocol": (run_protocol, [k for k in FOLDER_TARGETS if k != "inside_input"]),
    "dyntransnet_export_onnx": (run_export_onnx, FILE_TARGETS),
    "dyntransnet_benchmark": (run_benchmark, FILE_TARGETS),
    "dyntransnet_convert_lits": (run_convert_lits, DATASET_TARGETS),
    "dyntransnet_convert_atlas": (run_convert_atlas, DATASET_TARGETS),
    "dyntransnet_make_phantom": (run_make_phantom, DATASET_TARGETS),
    "dyntransnet_plan_and_preprocess": (run_plan_and_preprocess, ["nnunet_plans"]),
}


def test_every_console_script_is_in_the_battery():
    scripts = {ep.name for ep in distribution("nnunet-dyntransnet").entry_points if ep.group == "console_scripts"}
    assert scripts, "the package's entry points were not found (is it installed?)"
    assert scripts == set(BATTERY), f"not in the battery: {sorted(scripts - set(BATTERY))}; " \
                                    f"no longer installed: {sorted(set(BATTERY) - scripts)}"


@pytest.fixture(scope="module")
def tiny_fold(tmp_path_factory):
    """The committed version-0.1 demo model, laid out as an nnU-Net results folder (export reads it)."""
    import shutil

    src = Path(__file__).parent / "data" / "model_0_1" / "nnUNetTrainerDynTransNetDemoCPU__nnUNetPlans__3d_fullres"
    dst = tmp_path_factory.mktemp("results") / "Dataset990_LiverPhantomCT" / src.name
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("command,kind", [(c, k) for c, (_, kinds) in BATTERY.items() for k in kinds])
def test_no_command_touches_what_it_does_not_own(world, command, kind, capsys, tiny_fold, monkeypatch):
    import nnunet_dyntransnet.utilities.ownership as ownership

    runner = BATTERY[command][0]
    if runner is run_export_onnx:
        monkeypatch.setenv("nnUNet_results", str(tiny_fold.parent.parent))
    # a runner lays out its inputs and hostile target, then hands back the command's run
    run = runner(world, kind, tiny_fold) if runner is run_export_onnx else runner(world, kind)
    asked = []
    original = ownership.Claim.place
    monkeypatch.setattr(ownership.Claim, "place", lambda self, target: asked.append(target) or original(self, target))
    before = _tree(world)
    code = run()
    err = capsys.readouterr().err
    assert asked, f"{command} never asked the ownership rule ({err[-2000:]})"
    assert code not in (0, None), f"{command} against {kind}: exit {code}\n{err[-2000:]}"
    assert any(w in err for w in ("never", "did not write", "is a file", "is a folder")), err[-2000:]
    assert _tree(world) == before, f"{command} against {kind} changed the tree"


# ------------------------------------------------------------------ the rule itself

def test_a_folder_is_owned_file_by_file(tmp_path):
    claim = Claim("dyntransnet_x", option="--out")
    out = tmp_path / "out"
    assert claim.folder(out, overwrite=False) == []
    out.mkdir()
    assert claim.folder(out, overwrite=False) == [out], "an empty folder is used"
    (out / "figures").mkdir()
    (out / "figures" / "a.png").write_text("x")
    write_marker(out, "dyntransnet_x")
    assert marked_files(out, "dyntransnet_x") == {"figures/a.png"}
    with pytest.raises(OwnershipError, match="pass --overwrite"):
        claim.folder(out, overwrite=False)
    assert claim.folder(out, overwrite=True) == [out]
    assert claim.folder(out, overwrite=False, reusable=True) == [out]
    (out / "figures" / "mine.png").write_text("mine")
    with pytest.raises(OwnershipError, match="figures/mine.png"):
        claim.folder(out, overwrite=True)
    with pytest.raises(OwnershipError, match="did not write"):
        Claim("dyntransnet_other", option="--out").folder(out, overwrite=True)


def test_a_marker_of_the_older_kind_vouches_for_nothing(tmp_path):
    (tmp_path / ".dyntransnet_x").write_text("written by dyntransnet_x; --overwrite may replace this folder\n")
    (tmp_path / "report.md").write_text("x")
    assert marked_files(tmp_path, "dyntransnet_x") is None
    with pytest.raises(OwnershipError, match="did not write"):
        Claim("dyntransnet_x").folder(tmp_path, overwrite=True)


def test_linked_folders_are_listed_not_entered(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    assert files_under(tmp_path / "out") == {"link"}


def test_a_file_is_replaced_only_if_the_command_wrote_it(tmp_path):
    claim = Claim("dyntransnet_x")
    path = tmp_path / "r.json"
    assert claim.file(path, overwrite=False, owned=lambda p: True) is False
    path.write_text("{}")
    with pytest.raises(OwnershipError, match="was not written by dyntransnet_x; it is never replaced"):
        claim.file(path, overwrite=True, owned=lambda p: False)
    with pytest.raises(OwnershipError, match="pass --overwrite"):
        claim.file(path, overwrite=False, owned=lambda p: True)
    assert claim.file(path, overwrite=True, owned=lambda p: True) is True
