"""scripts/run_protocol.py: the commands a dry run prints, what it skips, and its refusals (in-process)."""
import importlib.util
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "run_protocol.py"


@pytest.fixture
def _run(monkeypatch, capsys):
    """Run the script's main() as `python scripts/run_protocol.py ARGS` would, with nnU-Net's folders under ``base``."""
    spec = importlib.util.spec_from_file_location("run_protocol", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    def run(args, base, **extra):
        for key in [k for k in os.environ if k.startswith("nnUNet_") and k != "nnUNet_extTrainer"]:
            monkeypatch.delenv(key)
        if base is not None:
            for key, sub in (("nnUNet_raw", "raw"), ("nnUNet_preprocessed", "pre"), ("nnUNet_results", "res")):
                monkeypatch.setenv(key, str(base / sub))
        code = script.main([str(a) for a in args])
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    return run


def _commands(stdout):
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


def test_dry_run_lists_the_whole_protocol(tmp_path, _run):
    proc = _run(["lits", "--source", tmp_path / "LiTS", "--dry-run"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    cmds = _commands(proc.stdout)
    assert cmds[0] == f"dyntransnet_convert_lits {tmp_path / 'LiTS'} -d 501 -np 4"
    # DeepLabV3+ is 2D only: the 2d configuration is planned too, and it trains there
    assert cmds[1] == "nnUNetv2_plan_and_preprocess -d 501 -c 3d_fullres 2d -np 4 --verify_dataset_integrity"
    trains = [c for c in cmds if c.startswith("nnUNetv2_train")]
    # nnU-Net's U-Net, DynTransNet, _Paper, 8 ablations and 7 baselines, 5 folds each
    assert len(trains) == 18 * 5
    assert "nnUNetv2_train 501 3d_fullres 4 -tr nnUNetTrainerDynTransNet_WeightedSum -device cuda" in trains
    assert "nnUNetv2_train 501 3d_fullres 0 -tr nnUNetTrainerSwinUNETR -device cuda" in trains
    assert "nnUNetv2_train 501 2d 0 -tr nnUNetTrainerDeepLabV3Plus -device cuda" in trains
    assert cmds[-1].startswith("dyntransnet_report ") and "--baseline nnUNetTrainerDynTransNet_Baseline" in cmds[-1]
    assert cmds[-1].count("__nnUNetPlans__3d_fullres") == 17 and cmds[-1].count("__nnUNetPlans__2d") == 1
    assert not (tmp_path / "raw").exists() and not (tmp_path / "res").exists(), "a dry run writes nothing"


def test_existing_steps_are_skipped_and_interrupted_folds_resume(tmp_path, _run):
    (tmp_path / "raw" / "Dataset502_ATLAS").mkdir(parents=True)
    (tmp_path / "raw" / "Dataset502_ATLAS" / "dataset.json").write_text("{}")
    (tmp_path / "pre" / "Dataset502_ATLAS").mkdir(parents=True)
    (tmp_path / "pre" / "Dataset502_ATLAS" / "nnUNetPlans.json").write_text("{}")
    trainer = tmp_path / "res" / "Dataset502_ATLAS" / "nnUNetTrainerDynTransNet__nnUNetPlans__3d_fullres"
    (trainer / "fold_0").mkdir(parents=True)
    (trainer / "fold_0" / "checkpoint_final.pth").write_bytes(b"")
    (trainer / "fold_1").mkdir()
    (trainer / "fold_1" / "checkpoint_latest.pth").write_bytes(b"")
    proc = _run(["atlas", "--source", tmp_path, "--trainers", "nnUNetTrainerDynTransNet", "--folds", "0", "1", "2",
                 "--dry-run"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    cmds = _commands(proc.stdout)
    assert cmds == [
        "nnUNetv2_train 502 3d_fullres 1 -tr nnUNetTrainerDynTransNet -device cuda --c",
        "nnUNetv2_train 502 3d_fullres 2 -tr nnUNetTrainerDynTransNet -device cuda",
        f"dyntransnet_report {trainer} --out {tmp_path / 'res' / 'Dataset502_ATLAS' / 'report'} --baseline "
        f"nnUNetTrainerDynTransNet --overwrite --title 'Dataset502_ATLAS: 3d_fullres, folds 0 1 2'",
    ]


def test_baselines_set(tmp_path, _run):
    proc = _run(["lits", "--source", tmp_path / "LiTS", "--trainers", "baselines", "--folds", "0", "--dry-run"],
                tmp_path)
    assert proc.returncode == 0, proc.stderr
    trains = [c.split(" -tr ")[1].split()[0] for c in _commands(proc.stdout) if c.startswith("nnUNetv2_train")]
    assert trains == ["nnUNetTrainer", "nnUNetTrainerDynTransNet", "nnUNetTrainerSegResNet", "nnUNetTrainerDynUNet",
                      "nnUNetTrainerUNETR", "nnUNetTrainerSwinUNETR", "nnUNetTrainerVNet", "nnUNetTrainerAttentionUNet",
                      "nnUNetTrainerDeepLabV3Plus"]


def test_refusals(tmp_path, _run):
    proc = _run(["lits", "--source", tmp_path, "--trainers", "baseline", "--dry-run"], tmp_path)
    assert proc.returncode == 2 and "baseline is neither a set (all, main, ablations, baselines, demo)" in proc.stderr
    proc = _run(["lits", "--source", tmp_path, "--trainers", "nnUNetTrainer,nnUNetTrainerNope", "--dry-run"], tmp_path)
    assert proc.returncode == 2 and "nnUNetTrainerNope is neither" in proc.stderr
    proc = _run(["lits", "--source", tmp_path, "--dry-run"], None)
    assert proc.returncode == 2 and "nnUNet_raw" in proc.stderr
    proc = _run(["lits", "--dry-run"], tmp_path)
    assert proc.returncode == 2 and "--source" in proc.stderr
