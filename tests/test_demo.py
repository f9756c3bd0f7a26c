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
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no staging folder left behind"
    assert len(results["per_case"]["DynTransNet"]) == 2
    assert sorted(p.name for p in (out / "overlays").glob("*.png")) == ["phantom_006.png", "phantom_007.png"]
    assert (out / "training_progress.png").is_file() and (out / "results.md").is_file()
    # issue 18, case 20: steps done against steps planned, and a plain word when too few were trained
    md = (out / "results.md").read_text()
    assert results["steps"] == 3 and results["steps_planned"] == int(0.1 * 60 / 0.63)  # 9 planned
    assert "Trained 1 epoch(s) of 3 steps = 3 steps" in md and results["representative"] is False
    assert "scores are not representative of DynTransNet" in md and "not representative" in proc.stdout
    assert json.loads((out / "nnUNet_results" / "Dataset990_LiverPhantomCT" /
                       "nnUNetTrainerDynTransNetDemoCPU__nnUNetPlans__3d_fullres" / "fold_0" /
                       "debug.json").read_text())["train_minutes"] == "0.1", "the budget is recorded"
    # a changed budget trains again (the model under --out is the demo's own)
    again = subprocess.run([str(exe), "--out", str(out), "--minutes", "0.05", "-n", "6", "--test", "2",
                            "--iterations", "3", "--device", "cpu"], env=env, capture_output=True, text=True,
                           timeout=1200)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert "was trained for 0.1 minutes in epochs of 3 steps: training again for 0.05 / 3" in again.stdout
    # nnU-Net's folders were created inside --out, since none was set
    assert (out / "nnUNet_raw" / "Dataset990_LiverPhantomCT" / "labelsTs").is_dir()
