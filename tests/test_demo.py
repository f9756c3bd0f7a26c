"""``dyntransnet_demo`` (the README's main job) runs end to end, CI-sized: few cases, one short epoch."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_and_writes_its_report(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update(nnUNet_n_proc_DA="1", nnUNet_def_n_proc="1", nnUNet_compile="false")
    out = tmp_path / "demo"
    exe = Path(sys.executable).parent / "dyntransnet_demo"
    proc = subprocess.run([str(exe), "--out", str(out), "--minutes", "0.1", "-n", "6", "--test", "2",
                           "--iterations", "3", "--device", "cpu"], env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    assert "| DynTransNet | whole liver |" in proc.stdout and "| threshold baseline | tumor |" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    log = proc.stdout + proc.stderr
    # the budget (0.1 minutes) stops the training after its first epoch, however long that took
    assert results["epochs"] == 1 and "training for 0.1 minutes (DYNTRANSNET_TRAIN_MINUTES), epochs of 3 steps" in log
    assert "training ends after 1 epochs" in log
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".dyntransnet_demo"], \
        "no staging folder left behind; the demo's marker lists what it wrote"
    assert len(results["per_case"]["DynTransNet"]) == 2
    assert sorted(p.name for p in (out / "overlays").glob("*.png")) == ["phantom_006.png", "phantom_007.png"]
    assert (out / "training_progress.png").is_file() and (out / "results.md").is_file()
    # issue 18, case 20: steps done against steps planned, and a plain word when too few were trained
    md = (out / "results.md").read_text()
    from nnunet_dyntransnet.demo import QUIET_CPU_SECONDS_PER_STEP

    # the budget may end the first epoch after fewer than its 3 steps (it is checked after every step): counted so
    assert 1 <= results["steps"] <= 3 and results["steps_planned"] == int(0.1 * 60 / QUIET_CPU_SECONDS_PER_STEP)
    assert f"Trained 1 epoch(s) of up to 3 steps = {results['steps']} steps" in md and results["representative"] is False
    # issue 27: results.md says what ran, what the rows are and why nnU-Net's own Dice differs
    assert "trainer `nnUNetTrainerDynTransNetDemoCPU` (fold 0)" in md and "widths capped at 8 to 64" in md
    assert "threshold baseline labels each voxel by intensity alone" in md and "Mean Validation Dice" in md
    assert "| method | class | Dice (%) | precision (%) | recall (%) |" in md, "percent, as the report prints them"
    assert "scores are not representative of DynTransNet" in md and "not representative" in proc.stdout
    assert json.loads((out / "nnUNet_results" / "Dataset990_LiverPhantomCT" /
                       "nnUNetTrainerDynTransNetDemoCPU__nnUNetPlans__3d_fullres" / "fold_0" /
                       "debug.json").read_text())["train_minutes"] == "0.1", "the budget is recorded"


def _fold(folder: Path, minutes: str, iterations: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "checkpoint_final.pth").write_bytes(b"")
    (folder / "debug.json").write_text(json.dumps({"train_minutes": minutes, "num_iterations_per_epoch": iterations}))
    return folder


def test_a_changed_budget_trains_again(tmp_path):
    """Issue 18, case 20: `dyntransnet_demo --minutes 20` after an 8-minute run logged "training for 20 minutes" and
    reused the 8-minute model."""
    from nnunet_dyntransnet.demo import _must_train

    out = tmp_path / "demo"
    fold = _fold(out / "nnUNet_results" / "fold_0", "8.0", "25")  # nnU-Net writes debug.json's values as strings
    assert _must_train(fold, out, 8.0, 25) is False and fold.is_dir(), "the same budget: the model is reused"
    assert _must_train(fold, out, 20.0, 25) is True and not fold.exists(), "another budget: trained again"
    elsewhere = _fold(tmp_path / "results" / "fold_0", "8.0", "25")
    with pytest.raises(SystemExit, match="lies outside --out, so the demo does not delete it"):
        _must_train(elsewhere, out, 8.0, 50)
    assert elsewhere.is_dir()
    assert _must_train(tmp_path / "never_trained", out, 8.0, 25) is True


def test_a_slow_first_epoch_warns_with_the_minutes_to_use():
    """Issue 27: the first epoch already showed the machine 4x slower than planned; the warning came only after the
    whole training. Now the trainer warns after its first epoch."""
    from nnunet_dyntransnet.trainers.demo import slow_machine_warning

    # 25 steps of 2.48 s against a quiet 0.62 s: 4x slower, 8 minutes train about 194 of 774 planned steps
    warning = slow_machine_warning(62.0, 25, 8.0, 0.62)
    assert warning.startswith("WARNING: the first epoch took 2.48 s a step, 4.0x the 0.62 s of a quiet 2-core machine")
    assert "about 194 of the 774 planned steps" in warning and "--minutes 32" in warning
    assert slow_machine_warning(20.0, 25, 8.0, 0.62) is None  # 0.8 s a step: 600 of 774, enough
