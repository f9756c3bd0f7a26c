"""Nothing lost, nothing silently wrong: the ONNX pair as a careless or unlucky user runs it (issue 18).

In-process where a subprocess adds nothing; SIGTERM needs a real process. The trained-model
path (2d and 3d export against nnUNetv2_predict) is in test_nnunet_e2e.py.
"""
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_dyntransnet.utilities import staging
from nnunet_dyntransnet.inference import predict


def _write(path: Path, array=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((4, 8, 8), np.float32) if array is None else array
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))


@pytest.fixture
def work(tmp_path, monkeypatch):
    """work/imgs (two scans), work/notes.txt, work/other_results/, and nnU-Net's folders beside it."""
    work = tmp_path / "work"
    for case in ("a", "b"):
        _write(work / "imgs" / f"{case}_0000.nii.gz")
    (work / "notes.txt").write_text("mine")
    (work / "other_results").mkdir()
    (work / "other_results" / "r.nii.gz").write_text("mine")
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (tmp_path / var).mkdir()
        monkeypatch.setenv(var, str(tmp_path / var))
    monkeypatch.chdir(tmp_path)
    return work


def _tree(root: Path):
    return sorted((str(p.relative_to(root)), p.read_bytes() if p.is_file() else None) for p in root.rglob("*"))


@pytest.mark.parametrize("out", ["work", "imgs", "other", "results", "cwd", "model_folder", "afile"])
def test_predict_onnx_never_replaces_inputs_nnunet_folders_or_foreign_files(work, tmp_path, capsys, out):
    """Case 1: `-o work --overwrite` with `-i work/imgs` deleted the inputs; case 13: a file as -o."""
    model = tmp_path / "models" / "m.onnx"
    model.parent.mkdir()
    model.write_text("not read: the output is checked first")
    (tmp_path / "afile.txt").write_text("mine")
    target = {"work": work, "imgs": work / "imgs", "other": work / "other_results", "results": tmp_path / "nnUNet_results", "cwd": tmp_path,
              "model_folder": model.parent, "afile": tmp_path / "afile.txt"}[out]
    before = _tree(tmp_path)
    code = predict.main(["-i", str(work / "imgs"), "-o", str(target), "-m", str(model), "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert {"work": f"holds {work / 'imgs'} (the input folder, -i)", "imgs": f"is {work / 'imgs'}",
            "other": "holds files dyntransnet_predict_onnx did not write",
            "results": "$nnUNet_results", "cwd": "(the input folder, -i)", "model_folder": "(the model, -m)",
            "afile": "is a file"}[out] in err, err
    assert _tree(tmp_path) == before, "nothing changed"


def test_predict_onnx_reads_inputs_with_the_checked_reader(tmp_path):
    """Case 7: a truncated .nii.gz was zero-filled and predicted; a .nii beside .nii.gz was skipped."""
    folder = tmp_path / "imgs"
    _write(folder / "a_0000.nii.gz", np.ones((8, 32, 32), np.float32))
    _write(folder / "b_0000.nii.gz", np.ones((8, 32, 32), np.float32))
    assert sorted(predict._cases(folder, ".nii.gz", 1)) == ["a", "b"]
    _write(folder / "c_0000.nii", np.ones((8, 32, 32), np.float32))
    with pytest.raises(predict.InputError, match="do not end in .nii.gz, e.g. c_0000.nii"):
        predict._cases(folder, ".nii.gz", 1)
    (folder / "c_0000.nii").unlink()
    # issue 28, case 10: an upper-case ending was skipped without a word
    (folder / "a_0000.nii.gz").rename(folder / "C_0000.NII.GZ")
    with pytest.raises(predict.InputError, match="do not end in .nii.gz, e.g. C_0000.NII.GZ"):
        predict._cases(folder, ".nii.gz", 1)
    (folder / "C_0000.NII.GZ").rename(folder / "a_0000.nii.gz")
    truncated = folder / "b_0000.nii.gz"
    truncated.write_bytes(truncated.read_bytes()[:-60])
    with pytest.raises(predict.InputError, match=f"{truncated}: cannot read"):
        predict._cases(folder, ".nii.gz", 1)


def test_export_refuses_an_unwritable_folder_before_any_work(tmp_path, capsys, monkeypatch):
    """Case 11: a FileNotFoundError traceback after 20 s of exporting."""
    from nnunet_dyntransnet.inference.export import main

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    monkeypatch.delenv("nnUNet_results", raising=False)  # the destination is checked before the model is looked up
    assert main(["-d", "1", "-o", str(locked / "m.onnx")]) == 2
    assert f"{locked}: not writable" in capsys.readouterr().err


def test_export_leftovers_of_a_killed_run_are_removed(tmp_path):
    """Case 12: `.NAME.onnx.exporting-PID` stayed beside -o for ever."""
    out = tmp_path / "m.onnx"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = staging.staging_name(out, "exporting").split("@")[1].rsplit("-", 1)[0]
    leftover = tmp_path / f".m.onnx.exporting-{dead.pid}@{host}-0123abcd"
    leftover.write_bytes(b"\0" * 1000)
    alive = tmp_path / f".m.onnx.exporting-{os.getpid()}@{host}-0123abcd"
    alive.write_bytes(b"\0")
    staging.remove_stale_staging(out, "exporting")
    assert not leftover.exists(), "a dead run's partial model is removed"
    assert alive.exists(), "a live run's file is kept"


# the command's parent: the checks pass; the prediction runs in CHILD (a script of its own)
PARENT = """
import sys
from nnunet_dyntransnet.inference import predict
predict.prepare = lambda *a, **k: ([], {}, {"a": []})
predict._child_command = lambda argv: [sys.executable, sys.argv[1], *argv]
sys.exit(predict.main(sys.argv[2:]))
"""
# the supervised child: a partial output, and a worker process as nnU-Net's predictor starts them (spawn)
CHILD = """
import multiprocessing, sys, time
from pathlib import Path
from nnunet_dyntransnet.inference import predict
from nnunet_dyntransnet.utilities.staging import staged_folder
def slow(model, images, out, *a, **k):
    with staged_folder(Path(out), tag="predicting") as s:
        (s / "half.nii.gz").write_text("x")
        worker = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(600,), daemon=True)
        worker.start()
        print("started", flush=True)
        time.sleep(600)
predict.predict_folder = slow
if __name__ == "__main__":
    sys.exit(predict.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_predict_onnx_stopped_stops_its_workers_and_writes_nothing(tmp_path, signum, status):
    """Case 12 of issue 18: SIGTERM exited 1 with tracebacks; issue 28, case 8: nnU-Net's predictor workers were
    left running (Ctrl-C: a traceback from each). The prediction runs in a supervised child; stopping the command
    stops the child's whole group."""
    import uuid

    from process_helpers import TAG, interruptible, tagged, wait_for

    (tmp_path / "parent.py").write_text(PARENT)
    (tmp_path / "child.py").write_text(CHILD)
    tag = uuid.uuid4().hex
    out = tmp_path / "pred"
    p = subprocess.Popen([sys.executable, str(tmp_path / "parent.py"), str(tmp_path / "child.py"), "-i", str(tmp_path),
                          "-o", str(out), "-m", "m.onnx"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, TAG: tag}, preexec_fn=interruptible)
    assert p.stdout.readline().startswith("dyntransnet_predict_onnx: 1 case(s)")
    assert p.stdout.readline().strip() == "started"
    assert wait_for(lambda: len(tagged(tag)) >= 3, 60), "command, child and worker running"
    p.send_signal(signum)
    _, err = p.communicate(timeout=60)
    assert p.returncode == status, err
    assert "Traceback" not in err and "no prediction was written" in err, err
    assert "the prediction (with nnU-Net's workers) stopped by SIGTERM" in err, err
    assert wait_for(lambda: not tagged(tag), 10), f"orphans left: {tagged(tag)}"
    assert not out.exists() and not list(tmp_path.glob(".pred*"))


@pytest.mark.parametrize("args, message", [(["-npp", "0"], "-npp 0: at least 1 process"),
                                           (["-nps", "0"], "-nps 0: at least 1 process")])
def test_process_counts_are_checked_before_any_work(tmp_path, capsys, args, message):
    """Issue 28, case 13: -npp 0 and -nps 0 ended in tracebacks."""
    with pytest.raises(SystemExit) as e:
        predict.main(["-i", str(tmp_path), "-o", str(tmp_path / "out"), "-m", str(tmp_path / "m.onnx"), *args])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_export_of_a_truncated_checkpoint_names_the_file(tmp_path, capsys, monkeypatch):
    """Issue 28, case 12: a cut-off checkpoint_final.pth gave a torch traceback that did not name it."""
    import torch

    from nnunet_dyntransnet.inference.export import main

    fold = tmp_path / "results" / "Dataset963_Cut" / "nnUNetTrainerDynTransNet__nnUNetPlans__3d_fullres" / "fold_0"
    fold.mkdir(parents=True)
    torch.save({"network_weights": {"w": torch.zeros(500)}}, fold / "checkpoint_final.pth")
    data = (fold / "checkpoint_final.pth").read_bytes()
    (fold / "checkpoint_final.pth").write_bytes(data[: len(data) // 2])
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "results"))
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "pre"))
    assert main(["-d", "963", "-f", "0", "-o", str(tmp_path / "m.onnx")]) != 0
    err = capsys.readouterr().err
    assert f"{fold / 'checkpoint_final.pth'} ({len(data) // 2} bytes) cannot be read as a checkpoint" in err, err
    assert "-chk" in err and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists()
