"""scripts/run_protocol.py: the commands a dry run prints, what it skips, and its refusals (in-process)."""
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "run_protocol.py"


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
    (trainer / "fold_0" / "validation").mkdir(parents=True)
    (trainer / "fold_0" / "checkpoint_final.pth").write_bytes(b"")
    (trainer / "fold_0" / "validation" / "summary.json").write_text("{}")
    (trainer / "fold_1").mkdir()
    (trainer / "fold_1" / "checkpoint_latest.pth").write_bytes(b"")
    # issue 18, case 5: nnU-Net writes checkpoint_final.pth before its final validation; killed during it, the fold
    # has the checkpoint and no summary, and is validated again
    (trainer / "fold_3").mkdir()
    (trainer / "fold_3" / "checkpoint_final.pth").write_bytes(b"")
    (trainer / "fold_3" / "checkpoint_latest.pth").write_bytes(b"")
    proc = _run(["atlas", "--source", tmp_path, "--trainers", "nnUNetTrainerDynTransNet", "--folds", "0", "1", "2",
                 "3", "--dry-run"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    cmds = _commands(proc.stdout)
    assert cmds == [
        "nnUNetv2_train 502 3d_fullres 1 -tr nnUNetTrainerDynTransNet -device cuda --c",
        "nnUNetv2_train 502 3d_fullres 2 -tr nnUNetTrainerDynTransNet -device cuda",
        "nnUNetv2_train 502 3d_fullres 3 -tr nnUNetTrainerDynTransNet -device cuda --val",
        f"dyntransnet_report {trainer} --out {tmp_path / 'res' / 'Dataset502_ATLAS' / 'report'} --baseline "
        f"nnUNetTrainerDynTransNet --overwrite --title 'Dataset502_ATLAS: 3d_fullres, folds 0 1 2 3'",
    ]


def test_baselines_set(tmp_path, _run):
    proc = _run(["lits", "--source", tmp_path / "LiTS", "--trainers", "baselines", "--folds", "0", "--dry-run"],
                tmp_path)
    assert proc.returncode == 0, proc.stderr
    trains = [c.split(" -tr ")[1].split()[0] for c in _commands(proc.stdout) if c.startswith("nnUNetv2_train")]
    assert trains == ["nnUNetTrainer", "nnUNetTrainerDynTransNet", "nnUNetTrainerSegResNet", "nnUNetTrainerDynUNet",
                      "nnUNetTrainerUNETR", "nnUNetTrainerSwinUNETR", "nnUNetTrainerVNet", "nnUNetTrainerAttentionUNet",
                      "nnUNetTrainerDeepLabV3Plus"]


def test_refusals(tmp_path, _run, capsys):
    proc = _run(["lits", "--source", tmp_path, "--trainers", "baseline", "--dry-run"], tmp_path)
    assert proc.returncode == 2 and "baseline is neither a set (all, main, ablations, baselines, demo)" in proc.stderr
    proc = _run(["lits", "--source", tmp_path, "--trainers", "nnUNetTrainer,nnUNetTrainerNope", "--dry-run"], tmp_path)
    assert proc.returncode == 2 and "nnUNetTrainerNope is neither" in proc.stderr
    # case 13: a '"' in $nnUNet_results was blamed on --sbatch, which was not given, after converting and planning
    quoted = tmp_path / 'my "data'
    proc = _run(["phantom", "--slurm", "--trainers", "nnUNetTrainer"], quoted)
    assert proc.returncode == 2 and f"$nnUNet_results ({quoted / 'res'}) holds '\"'" in proc.stderr
    assert "--sbatch" not in proc.stderr and not quoted.exists(), "refused before any work"
    proc = _run(["phantom", "--slurm", "--trainers", "nnUNetTrainer", '--sbatch=--comment=a "b"'], tmp_path / "x")
    assert proc.returncode == 2 and '--sbatch=--comment=a "b": an #SBATCH line cannot hold a double quote' in proc.stderr
    # one trainer twice: the same fold folder trained twice at once (on two GPUs with --gpus 0,1)
    proc = _run(["lits", "--source", tmp_path, "--trainers", "nnUNetTrainer, nnUNetTrainer", "--dry-run"], tmp_path)
    assert proc.returncode == 2 and "nnUNetTrainer is named twice" in proc.stderr
    proc = _run(["lits", "--source", tmp_path, "--dry-run"], None)
    assert proc.returncode == 2 and "nnUNet_raw" in proc.stderr
    proc = _run(["lits", "--dry-run"], tmp_path)
    assert proc.returncode == 2 and "--source" in proc.stderr
    for args, message in ((["--submit"], "--submit goes with --slurm"), (["--gpus", "0", "--device", "cpu"], "CUDA"),
                          (["--gpus", "0", "--slurm"], "not allowed with")):
        with pytest.raises(SystemExit) as e:
            _run(["atlas", *args], tmp_path)
        assert e.value.code == 2 and message in capsys.readouterr().err


def _planned_atlas(base):
    """Converted and planned (empty stand-ins), so the protocol goes straight to training."""
    for sub, file in (("raw", "dataset.json"), ("pre", "nnUNetPlans.json")):
        (base / sub / "Dataset502_ATLAS").mkdir(parents=True)
        (base / sub / "Dataset502_ATLAS" / file).write_text("{}")
    return base / "res" / "Dataset502_ATLAS"


def _fake_bin(tmp_path, monkeypatch, **scripts):
    """Stand-in commands first on PATH (bash scripts), so the protocol runs them instead of nnU-Net's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/usr/bin/env bash\n" + body)
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


# nnUNetv2_train DATASET CONFIGURATION FOLD -tr TRAINER -device cuda: records when it ran on which GPU, then writes
# the fold's final checkpoint; the DynUNet fold 1 stand-in fails
FAKE_TRAIN = r"""
results="$nnUNet_results/Dataset502_ATLAS/${5}__nnUNetPlans__$2/fold_$3"
echo "start $(date +%s.%N) $CUDA_VISIBLE_DEVICES $5 $3" >> "$TRAIN_RECORD"
sleep 0.4
echo "end $(date +%s.%N) $CUDA_VISIBLE_DEVICES $5 $3" >> "$TRAIN_RECORD"
if [ "$5" = nnUNetTrainerDynUNet ] && [ "$3" = 1 ]; then
    mkdir -p "$results" && echo "CUDA out of memory" | tee "$results/training_log_2026_12_6_01_02_03.txt"; exit 3; fi
mkdir -p "$results/validation" && touch "$results/checkpoint_final.pth" && echo '{}' > "$results/validation/summary.json"
"""


def test_gpus_run_one_training_per_gpu_concurrently(tmp_path, _run, monkeypatch):
    results = _planned_atlas(tmp_path)
    _fake_bin(tmp_path, monkeypatch, nnUNetv2_train=FAKE_TRAIN, dyntransnet_report="echo report >> $TRAIN_RECORD\n")
    record = tmp_path / "record.txt"
    monkeypatch.setenv("TRAIN_RECORD", str(record))
    proc = _run(["atlas", "--trainers", "nnUNetTrainer,nnUNetTrainerDynTransNet", "--folds", "0", "1", "2",
                 "--gpus", "0,1"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    events = [line.split() for line in record.read_text().splitlines() if line != "report"]
    assert len(events) == 12 and record.read_text().splitlines()[-1] == "report"  # report after all six
    running = {"0": 0, "1": 0}
    peak_total = 0
    for kind, _, gpu, *_ in sorted(events, key=lambda e: float(e[1])):
        running[gpu] += 1 if kind == "start" else -1
        assert running[gpu] <= 1, "two trainings on one GPU"
        peak_total = max(peak_total, sum(running.values()))
    assert peak_total == 2, "both GPUs busy at once"
    logs = sorted(p.name for p in (results / "protocol" / "logs").iterdir())
    assert len(logs) == 6 and "nnUNetTrainer__3d_fullres__fold0.log" in logs
    assert {p.read_text().strip() for p in (results / "protocol" / "status").iterdir()} == {"done"}

    # again: everything is trained, nothing runs but the report
    record.unlink()
    proc = _run(["atlas", "--trainers", "nnUNetTrainer,nnUNetTrainerDynTransNet", "--folds", "0", "1", "2",
                 "--gpus", "0,1"], tmp_path)
    assert proc.returncode == 0 and record.read_text().splitlines() == ["report"]
    assert proc.stdout.count("is trained") == 6


def test_gpus_a_failed_training_is_reported_and_the_others_finish(tmp_path, _run, monkeypatch):
    results = _planned_atlas(tmp_path)
    _fake_bin(tmp_path, monkeypatch, nnUNetv2_train=FAKE_TRAIN, dyntransnet_report="echo report >> $TRAIN_RECORD\n")
    monkeypatch.setenv("TRAIN_RECORD", str(tmp_path / "record.txt"))
    proc = _run(["atlas", "--trainers", "nnUNetTrainerDynUNet", "--folds", "0", "1", "2", "--gpus", "3"], tmp_path)
    assert proc.returncode == 1
    fold1 = results / "nnUNetTrainerDynUNet__nnUNetPlans__3d_fullres/fold_1"
    assert "1 training(s) failed, 0 still running elsewhere; no report written" in proc.stderr
    # case 12: the message named a logs folder that a run without --gpus never makes, and not the fold's own log
    assert (f"failed: nnUNetTrainerDynUNet__3d_fullres__fold1 (see {results}/protocol/logs/nnUNetTrainerDynUNet__"
            f"3d_fullres__fold1.log and {fold1}/training_log_2026_12_6_01_02_03.txt)") in proc.stderr
    assert "report" not in (tmp_path / "record.txt").read_text()
    assert all((results / f"nnUNetTrainerDynUNet__nnUNetPlans__3d_fullres/fold_{f}/validation/summary.json").is_file()
               for f in (0, 2))
    status = results / "protocol" / "status"
    assert (status / "nnUNetTrainerDynUNet__3d_fullres__fold1").read_text().strip() == "failed 3"
    assert "CUDA out of memory" in (results / "protocol/logs/nnUNetTrainerDynUNet__3d_fullres__fold1.log").read_text()
    proc = _run(["atlas", "--trainers", "nnUNetTrainerDynUNet", "--folds", "0", "1", "2", "--progress"], tmp_path)
    assert "| nnUNetTrainerDynUNet__3d_fullres__fold1 | failed |" in proc.stdout
    assert "3 trainings: 2 done, 1 failed" in proc.stdout


def test_one_by_one_a_failed_training_names_its_own_log(tmp_path, _run, monkeypatch):
    """Without --gpus the output goes to the terminal: the message points there and at the fold's training log."""
    results = _planned_atlas(tmp_path)
    _fake_bin(tmp_path, monkeypatch, nnUNetv2_train=FAKE_TRAIN, dyntransnet_report="echo report >> $TRAIN_RECORD\n")
    monkeypatch.setenv("TRAIN_RECORD", str(tmp_path / "record.txt"))
    proc = _run(["atlas", "--trainers", "nnUNetTrainerDynUNet", "--folds", "1"], tmp_path)
    assert proc.returncode == 1
    fold1 = results / "nnUNetTrainerDynUNet__nnUNetPlans__3d_fullres/fold_1"
    assert (f"failed: nnUNetTrainerDynUNet__3d_fullres__fold1 (see its output above and "
            f"{fold1}/training_log_2026_12_6_01_02_03.txt)") in proc.stderr
    assert "protocol/logs" not in proc.stderr and not (results / "protocol" / "logs").exists()


def test_gpus_dry_run_assigns_devices(tmp_path, _run):
    _planned_atlas(tmp_path)
    proc = _run(["atlas", "--trainers", "main", "--folds", "0", "1", "--gpus", "0,1,2", "--dry-run"], tmp_path)
    cmds = _commands(proc.stdout)
    assert cmds[:4] == ["CUDA_VISIBLE_DEVICES=0 nnUNetv2_train 502 3d_fullres 0 -tr nnUNetTrainer -device cuda",
                        "CUDA_VISIBLE_DEVICES=1 nnUNetv2_train 502 3d_fullres 1 -tr nnUNetTrainer -device cuda",
                        "CUDA_VISIBLE_DEVICES=2 nnUNetv2_train 502 3d_fullres 0 -tr nnUNetTrainerDynTransNet -device cuda",
                        "CUDA_VISIBLE_DEVICES=0 nnUNetv2_train 502 3d_fullres 1 -tr nnUNetTrainerDynTransNet -device cuda"]


def test_slurm_job_array_and_report_job(tmp_path, _run, monkeypatch):
    results = _planned_atlas(tmp_path)
    proc = _run(["atlas", "--trainers", "main", "--folds", "0", "1", "--slurm", "--dry-run",
                 "--sbatch=--partition=gpu", "--sbatch=--time=48:00:00"], tmp_path)
    assert proc.returncode == 0 and "#SBATCH --array=0-3" in proc.stdout and not (results / "protocol").exists()
    # a fake sbatch records its arguments and answers job ids; each task runs its training by the resume rule
    calls = tmp_path / "sbatch_calls.txt"
    _fake_bin(tmp_path, monkeypatch, sbatch=f'echo "$@" >> {calls}\nn=$(wc -l < {calls}); echo "$((1000 + n));cluster"\n',
              nnUNetv2_train='echo "$@" >> "$TRAIN_RECORD"\n')
    proc = _run(["atlas", "--trainers", "main", "--folds", "0", "1", "--slurm", "--submit",
                 "--sbatch=--partition=gpu"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "submitted job array 1001 (4 trainings) and report job 1002 (afterany" in proc.stdout
    first, second = calls.read_text().splitlines()
    slurm = results / "protocol" / "slurm"
    assert first == f"--parsable {slurm / 'train.sbatch'}"
    assert second == f"--parsable --dependency=afterany:1001 {slurm / 'report.sbatch'}"
    train = (slurm / "train.sbatch").read_text()
    assert "#SBATCH --partition=gpu" in train and "#SBATCH --gres=gpu:1" in train
    assert "dyntransnet_report" in (slurm / "report.sbatch").read_text()
    # run task 3 (DynTransNet fold 1) as SLURM would: first fresh, then after an interruption (--c), then finished
    fold = results / "nnUNetTrainerDynTransNet__nnUNetPlans__3d_fullres" / "fold_1"
    record = tmp_path / "record.txt"
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "3", "TRAIN_RECORD": str(record)}
    import subprocess

    subprocess.run(["bash", str(slurm / "train.sbatch")], env=env, check=True)
    fold.mkdir(parents=True)
    (fold / "checkpoint_latest.pth").touch()
    subprocess.run(["bash", str(slurm / "train.sbatch")], env=env, check=True)
    (fold / "checkpoint_final.pth").touch()
    subprocess.run(["bash", str(slurm / "train.sbatch")], env=env, check=True)  # killed during validation: --val
    (fold / "validation").mkdir()
    (fold / "validation" / "summary.json").write_text("{}")
    subprocess.run(["bash", str(slurm / "train.sbatch")], env=env, check=True)
    assert record.read_text().splitlines() == ["502 3d_fullres 1 -tr nnUNetTrainerDynTransNet -device cuda",
                                               "502 3d_fullres 1 -tr nnUNetTrainerDynTransNet -device cuda --c",
                                               "502 3d_fullres 1 -tr nnUNetTrainerDynTransNet -device cuda --val"]
    assert (results / "protocol/status/nnUNetTrainerDynTransNet__3d_fullres__fold1").read_text().strip() == "done"


def test_slurm_submit_without_sbatch(tmp_path, _run, monkeypatch):
    _planned_atlas(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    proc = _run(["atlas", "--trainers", "main", "--folds", "0", "--slurm", "--submit"], tmp_path)
    assert proc.returncode == 1 and "sbatch not found" in proc.stderr


def test_progress_estimates_time_left_from_nnunet_epoch_times(tmp_path, _run):
    results = _planned_atlas(tmp_path)
    running = results / "nnUNetTrainerDynTransNet__nnUNetPlans__3d_fullres" / "fold_0"
    running.mkdir(parents=True)
    (running / "debug.json").write_text('{"num_epochs": 10}')
    (running / "training_log_2026_11_28_10_00_00.txt").write_text(
        "2026-11-28 10:00:00.000001: Epoch 0\n2026-11-28 10:01:40.000001: Epoch time: 100.0 s\n"
        "2026-11-28 10:01:41.000001: Epoch 1\n2026-11-28 10:03:41.000001: Epoch time: 120.0 s\n"
        "2026-11-28 10:03:42.000001: Epoch 2\n")
    status = results / "protocol" / "status"
    status.mkdir(parents=True)
    (status / "nnUNetTrainerDynTransNet__3d_fullres__fold0").write_text("running node7 1234\n")
    done = results / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    (done / "validation").mkdir(parents=True)
    (done / "checkpoint_final.pth").touch()
    (done / "validation" / "summary.json").write_text("{}")
    proc = _run(["atlas", "--trainers", "main", "--folds", "0", "1", "--progress"], tmp_path)
    out = proc.stdout
    assert proc.returncode == 0
    assert "| nnUNetTrainer__3d_fullres__fold0 | done |" in out
    # 8 epochs left at 110 s: 880 s; the waiting DynTransNet fold 1 has 1000 epochs at DynTransNet's 110 s
    assert "| nnUNetTrainerDynTransNet__3d_fullres__fold0 | running | 2/10 | 110 s | 0.2 h |" in out
    assert "| nnUNetTrainerDynTransNet__3d_fullres__fold1 | waiting | 0/1000 | - | 30.6 h |" in out
    # nnU-Net's U-Net fold 1 has no epoch time of its own trainer: the mean over all
    assert "| nnUNetTrainer__3d_fullres__fold1 | waiting | 0/1000 | - | 30.6 h |" in out
    assert "4 trainings: 1 done, 1 running, 2 waiting. Training time left: 61.4 h on one GPU" in out


# ---------------------------------------------------------------- issue 18: the protocol at scale, as users broke it

@pytest.mark.parametrize("gpus, message", [("0,0", "GPU 0 given more than once"), ("", "give GPU ids"),
                                           ("0,,1", "give GPU ids"), ("a", "'a' is not a GPU id")])
def test_gpus_are_validated(tmp_path, _run, capsys, gpus, message):
    """Case 3: --gpus 0,0 ran both on GPU 0 and forgot one; --gpus "" looped for ever (ZeroDivisionError dry)."""
    _planned_atlas(tmp_path)
    for dry in ([], ["--dry-run"]):
        with pytest.raises(SystemExit) as e:
            _run(["atlas", "--trainers", "main", "--gpus", gpus, *dry], tmp_path)
        assert e.value.code == 2 and message in capsys.readouterr().err


def test_gpu_ids_beyond_the_machine_are_refused():
    from nnunet_dyntransnet.protocol.scheduling import parse_gpus

    assert parse_gpus(" 0, 1", available=2) == ["0", "1"]
    with pytest.raises(ValueError, match="has 2 CUDA device"):
        parse_gpus("0,2", available=2)


@pytest.mark.parametrize("text, message", [("1,01", "GPU 1 given more than once"), ("\uff10,0", "is not a GPU id"),
                                           ("\u00b2", "is not a GPU id")])
def test_gpu_ids_are_ascii_numbers_compared_as_numbers(text, message):
    """Issue 28, case 7: --gpus 1,01 passed the duplicate check (both CUDA_VISIBLE_DEVICES=1); fullwidth and
    superscript digits passed str.isdigit."""
    from nnunet_dyntransnet.protocol.scheduling import parse_gpus

    with pytest.raises(ValueError, match=message):
        parse_gpus(text)
    assert parse_gpus("01,2") == ["1", "2"]


@pytest.mark.parametrize("args, message", [(["--folds", "7", "-1"], "numbered from 0"),
                                           (["--folds", "0", "0"], "each fold once"),
                                           (["--folds", "5"], "beyond the split's 5 folds"),
                                           (["--trainers", ""], "names no trainer"),
                                           (["--trainers", " , "], "names no trainer")])
def test_folds_and_trainers_are_validated(tmp_path, _run, capsys, args, message):
    """Case 19: --folds 7 -1 was accepted (nnUNetv2_train ... -1); --trainers "" gave a garbled message."""
    _planned_atlas(tmp_path)
    try:
        proc = _run(["atlas", *args, "--dry-run"], tmp_path)
        code, err = proc.returncode, proc.stderr
    except SystemExit as e:
        code, err = e.code, capsys.readouterr().err
    assert code == 2 and message in err, err


SLOW_TRAIN = r"""
echo $$ >> "$TRAIN_PIDS"
exec sleep 120
"""


def _wait_for_lines(path: Path, n: int, timeout: float = 30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.is_file() and len(path.read_text().split()) >= n:
            return [int(p) for p in path.read_text().split()]
        time.sleep(0.1)
    raise AssertionError(f"{path}: fewer than {n} lines after {timeout} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z" if Path(f"/proc/{pid}").exists() else True


def test_sigterm_stops_the_trainings_and_a_rerun_never_starts_a_live_one(tmp_path, monkeypatch):
    """Case 4: SIGTERM exited 143 at once, the trainings ran on as orphans, status 'running' for ever, and a rerun
    started a second copy into the same fold folders."""
    results = _planned_atlas(tmp_path)
    _fake_bin(tmp_path, monkeypatch, nnUNetv2_train=SLOW_TRAIN)
    pids = tmp_path / "pids.txt"
    env = {**os.environ, "TRAIN_PIDS": str(pids), "nnUNet_raw": str(tmp_path / "raw"),
           "nnUNet_preprocessed": str(tmp_path / "pre"), "nnUNet_results": str(tmp_path / "res")}
    args = [sys.executable, str(SCRIPT), "atlas", "--trainers", "nnUNetTrainer", "--folds", "0", "1", "--gpus", "0,1"]
    runner = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children = _wait_for_lines(pids, 2)
    runner.send_signal(signal.SIGTERM)
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 143, err
    time.sleep(0.2)
    assert not any(_alive(p) for p in children), "no orphan keeps training"
    status = results / "protocol" / "status"
    assert {p.read_text().strip() for p in status.iterdir()} == {"stopped SIGTERM"}

    # an orphan of a runner killed by SIGKILL: its status says running, its process lives; a rerun leaves it alone
    orphan = subprocess.Popen(["sleep", "60"])
    try:
        (status / "nnUNetTrainer__3d_fullres__fold0").write_text(f"running {socket.gethostname()} {orphan.pid}\n")
        pids.unlink()
        runner = subprocess.Popen([*args[:-1], "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started = _wait_for_lines(pids, 1)
        runner.send_signal(signal.SIGTERM)
        out, err = runner.communicate(timeout=60)
        assert len(started) == 1, "only fold 1 started; fold 0 runs already"
        assert "nnUNetTrainer__3d_fullres__fold0 is running already" in out
    finally:
        orphan.kill()
        orphan.wait()


def test_progress_reads_the_trainers_epoch_count(tiny_dataset, monkeypatch):
    """Case 8: a fold not yet started was assumed to take nnU-Net's 1000 epochs (the test trainer showed 26 h)."""
    from nnunet_dyntransnet.protocol.scheduling import Training, trainer_epochs

    for key, value in tiny_dataset.env.items():
        monkeypatch.setenv(key, value)
    results = tiny_dataset.base / "results"
    before = sorted(results.rglob("*")) if results.exists() else []
    fold = tiny_dataset.base / "never"
    assert trainer_epochs(Training(tiny_dataset.id, "nnUNetTrainer_5epochs", "3d_fullres", 0, fold, "cpu")) == 5
    assert trainer_epochs(Training(tiny_dataset.id, "nnUNetTrainerDynTransNet_Paper", "3d_fullres", 0, fold,
                                   "cpu")) == 300
    assert trainer_epochs(Training(tiny_dataset.id, "nnUNetTrainerNope", "3d_fullres", 0, fold, "cpu")) is None
    assert (sorted(results.rglob("*")) if results.exists() else []) == before, "building a trainer wrote nothing"


# nnUNetv2_train in its final validation: a spawned export pool (workers and multiprocessing's resource tracker)
VALIDATING_TRAIN = r"""
exec python -c '
import multiprocessing, os, sys, time
if __name__ == "__main__":
    pool = multiprocessing.get_context("spawn").Pool(2)
    pool.map_async(time.sleep, [600, 600])
    with open(os.environ["TRAIN_PIDS"], "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(600)
'
"""


@pytest.mark.parametrize("gpus", [[], ["--gpus", "0"]])
def test_sigterm_during_validation_stops_every_worker_and_records_it(tmp_path, monkeypatch, gpus):
    """Issue 28, case 8: SIGTERM to the protocol during nnU-Net's validation left a worker and the resource tracker
    alive, recorded no `stopped` status and SIGKILLed the training."""
    import uuid

    from process_helpers import TAG, tagged, wait_for

    results = _planned_atlas(tmp_path)
    _fake_bin(tmp_path, monkeypatch, nnUNetv2_train=VALIDATING_TRAIN)
    tag, pids = uuid.uuid4().hex, tmp_path / "pids.txt"
    env = {**os.environ, TAG: tag, "TRAIN_PIDS": str(pids), "nnUNet_raw": str(tmp_path / "raw"),
           "nnUNet_preprocessed": str(tmp_path / "pre"), "nnUNet_results": str(tmp_path / "res")}
    runner = subprocess.Popen([sys.executable, str(SCRIPT), "atlas", "--trainers", "nnUNetTrainer", "--folds", "0",
                               *gpus], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_lines(pids, 1, timeout=60)
    assert wait_for(lambda: len(tagged(tag)) >= 5, 60), "protocol, training, two workers, resource tracker"
    runner.send_signal(signal.SIGTERM)
    out, err = runner.communicate(timeout=120)
    assert runner.returncode == 143, err
    assert "stopped by SIGTERM" in out and "Traceback" not in err, out + err
    assert wait_for(lambda: not tagged(tag), 10), f"orphans left: {tagged(tag)}"
    status = results / "protocol" / "status" / "nnUNetTrainer__3d_fullres__fold0"
    assert status.read_text().strip() == "stopped SIGTERM"


def test_slurm_quotes_and_a_killed_task_writes_its_status(tmp_path, _run, monkeypatch):
    """Case 9: a log path with a space and --sbatch="--comment=my job" were split by sbatch; a task killed by
    SIGTERM left 'running'; a resubmitted task never satisfied the report's afterok, so the report waited for ever."""
    base = tmp_path / "my data"
    results = _planned_atlas(base)
    proc = _run(["atlas", "--trainers", "nnUNetTrainer", "--folds", "0", "--slurm", "--sbatch=--comment=my job"], base)
    assert proc.returncode == 0, proc.stderr
    slurm = results / "protocol" / "slurm"
    train, report = (slurm / "train.sbatch").read_text(), (slurm / "report.sbatch").read_text()
    assert '#SBATCH "--comment=my job"' in train and '#SBATCH "--comment=my job"' in report
    assert f'#SBATCH "--output={results / "protocol" / "logs"}/%x_%A_%a.log"' in train
    # the report job refuses while a training has not finished
    done = subprocess.run(["bash", str(slurm / "report.sbatch")], capture_output=True, text=True,
                          env={**os.environ, "PATH": str(tmp_path / "nothing") + os.pathsep + os.environ["PATH"]})
    assert done.returncode == 1 and "not finished:" in done.stderr and "--report-only" in done.stderr
    # a task killed by SIGTERM records it
    _fake_bin(tmp_path, monkeypatch, nnUNetv2_train="exec sleep 120\n")
    task = subprocess.Popen(["bash", str(slurm / "train.sbatch")], env={**os.environ, "SLURM_ARRAY_TASK_ID": "0"})
    status = results / "protocol" / "status" / "nnUNetTrainer__3d_fullres__fold0"
    deadline = time.time() + 30
    while not (status.is_file() and status.read_text().startswith("running")) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    task.send_signal(signal.SIGTERM)
    assert task.wait(timeout=30) == 143
    assert status.read_text().strip() == "stopped SIGTERM"


def test_report_only_reports_once_every_training_finished(tmp_path, _run, monkeypatch):
    results = _planned_atlas(tmp_path)
    _fake_bin(tmp_path, monkeypatch, dyntransnet_report="echo report >> $TRAIN_RECORD\n")
    monkeypatch.setenv("TRAIN_RECORD", str(tmp_path / "record.txt"))
    proc = _run(["atlas", "--trainers", "nnUNetTrainer", "--folds", "0", "--report-only"], tmp_path)
    assert proc.returncode == 1 and "1 training(s) have not finished" in proc.stderr
    fold = results / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0" / "validation"
    fold.mkdir(parents=True)
    (fold / "summary.json").write_text("{}")
    proc = _run(["atlas", "--trainers", "nnUNetTrainer", "--folds", "0", "--report-only"], tmp_path)
    assert proc.returncode == 0 and (tmp_path / "record.txt").read_text().split() == ["report"]
