"""Shared fixtures: one tiny dataset planned and preprocessed by nnU-Net once per test run (per worker)."""
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from nnunet_helpers import nnunet_env, run_command, write_tiny_dataset

TINY_ID = 901

if os.environ.get("PYTEST_XDIST_WORKER"):
    # two workers on two cores: one thread each (and in the nnU-Net commands they start), not two each
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def _plan_tiny_dataset(base: Path) -> None:
    write_tiny_dataset(base / "raw", TINY_ID)
    # a GPU-memory target of 20 MB: nnU-Net's planner then makes a 3d_fullres patch (8x28x24) much smaller than the
    # images (16x48x48) and, as for LiTS-sized CTs at its default 8 GB, adds 3d_lowres and 3d_cascade_fullres;
    # the tests train the cascade, and the small patch keeps every training step cheap; -npfp 1: the fingerprint's
    # default of 8 processes, each importing torch, costs more than it gains on two cores
    run_command(["nnUNetv2_plan_and_preprocess", "-d", str(TINY_ID), "-c", "2d", "3d_fullres", "3d_lowres", "-np", "1",
                 "-npfp", "1", "-gpu_memory_target", "0.02", "--verify_dataset_integrity"], nnunet_env(base))
    # nnU-Net's 5-fold split, written once here (as nnUNetTrainer.do_split would: sorted cases, seed 12345) so that
    # trainers on the two workers never race to write it
    from batchgenerators.utilities.file_and_folder_operations import save_json
    from nnunetv2.utilities.crossval_split import generate_crossval_split

    cases = sorted(p.name[: -len(".nii.gz")] for p in (base / "raw" / f"Dataset{TINY_ID}_Tiny" / "labelsTr").glob("*.nii.gz"))
    save_json(generate_crossval_split(cases, seed=12345, n_splits=5),
              str(base / "preprocessed" / f"Dataset{TINY_ID}_Tiny" / "splits_final.json"))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, worker_id):
    """``Dataset901_Tiny`` (6 training, 2 test cases, anisotropic), through ``nnUNetv2_plan_and_preprocess``
    with a 3d_lowres stage and the cascade.

    Planned once per test run: under pytest-xdist the first worker that needs it plans it in the
    run's shared temporary folder while holding a lock; the other finds it done.

    Attributes: ``base`` (holds raw/, preprocessed/, results/), ``raw`` (the raw dataset folder),
    ``env`` (nnU-Net's variables for subprocesses), ``id``. Tests that train write their own
    trainer folders (or results folders) and leave the planned data as it is.
    """
    if worker_id == "master":
        base = tmp_path_factory.mktemp("nnunet")
        _plan_tiny_dataset(base)
    else:
        from filelock import FileLock

        shared = tmp_path_factory.getbasetemp().parent  # the same folder for every worker of this run
        base = shared / "nnunet_tiny"
        with FileLock(str(shared / "nnunet_tiny.lock")):
            if not (base / ".planned").is_file():
                _plan_tiny_dataset(base)
                (base / ".planned").touch()
    return SimpleNamespace(base=base, raw=base / "raw" / f"Dataset{TINY_ID}_Tiny", env=nnunet_env(base), id=TINY_ID)


# the longest files first, so that the two workers finish together: each starts with two files (xdist hands
# out two at first, in this order, with --no-loadscope-reorder), e2e + trainers and real CT + demo
LONGEST_FIRST = ("test_nnunet_e2e.py", "test_real_ct.py", "test_trainers.py", "test_demo.py", "test_benchmark.py",
                 "test_planner.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a file is kept
