"""scripts/run_protocol.py: the commands a dry run prints, what it skips, and its refusals."""
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "run_protocol.py"


def _run(args, base: Path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    if base is not None:
        env.update(nnUNet_raw=str(base / "raw"), nnUNet_preprocessed=str(base / "pre"), nnUNet_results=str(base / "res"))
    env.update(extra)
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=120)


def _commands(stdout):
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


def test_dry_run_lists_the_whole_protocol(tmp_path):
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


def test_existing_steps_are_skipped_and_interrupted_folds_resume(tmp_path):
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


def test_baselines_set(tmp_path):
    proc = _run(["lits", "--source", tmp_path / "LiTS", "--trainers", "baselines", "--folds", "0", "--dry-run"],
                tmp_path)
    assert proc.returncode == 0, proc.stderr
    trains = [c.split(" -tr ")[1].split()[0] for c in _commands(proc.stdout) if c.startswith("nnUNetv2_train")]
    assert trains == ["nnUNetTrainer", "nnUNetTrainerDynTransNet", "nnUNetTrainerSegResNet", "nnUNetTrainerDynUNet",
                      "nnUNetTrainerUNETR", "nnUNetTrainerSwinUNETR", "nnUNetTrainerVNet", "nnUNetTrainerAttentionUNet",
                      "nnUNetTrainerDeepLabV3Plus"]


def test_refusals(tmp_path):
    proc = _run(["lits", "--source", tmp_path, "--trainers", "baseline", "--dry-run"], tmp_path)
    assert proc.returncode == 2 and "baseline is neither a set (all, main, ablations, baselines, demo)" in proc.stderr
    proc = _run(["lits", "--source", tmp_path, "--trainers", "nnUNetTrainer,nnUNetTrainerNope", "--dry-run"], tmp_path)
    assert proc.returncode == 2 and "nnUNetTrainerNope is neither" in proc.stderr
    proc = _run(["lits", "--source", tmp_path, "--dry-run"], None)
    assert proc.returncode == 2 and "nnUNet_raw" in proc.stderr
    proc = _run(["lits", "--dry-run"], tmp_path)
    assert proc.returncode == 2 and "--source" in proc.stderr
