"""Shared fixtures: one tiny dataset planned and preprocessed by nnU-Net once per test run (per worker)."""
import os
from types import SimpleNamespace

import pytest

from nnunet_helpers import nnunet_env, run_command, write_tiny_dataset

TINY_ID = 901

if os.environ.get("PYTEST_XDIST_WORKER"):
    # two workers on two cores: one thread each (and in the nnU-Net commands they start), not two each
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """``Dataset901_Tiny`` (6 training, 2 test cases, anisotropic), through ``nnUNetv2_plan_and_preprocess``.

    Attributes: ``base`` (holds raw/, preprocessed/, results/), ``raw`` (the raw dataset folder),
    ``env`` (nnU-Net's variables for subprocesses), ``id``. Tests that train write their own
    trainer folders under ``results/`` and leave the planned data as it is.
    """
    base = tmp_path_factory.mktemp("nnunet")
    raw = write_tiny_dataset(base / "raw", TINY_ID)
    env = nnunet_env(base)
    run_command(["nnUNetv2_plan_and_preprocess", "-d", str(TINY_ID), "-c", "2d", "3d_fullres", "-np", "1",
                 "--verify_dataset_integrity"], env)
    return SimpleNamespace(base=base, raw=raw, env=env, id=TINY_ID)


# the longest files first, so that the two workers finish together: each starts with two files (xdist hands
# out two at first, in this order, with --no-loadscope-reorder), e2e + trainers and real CT + demo
LONGEST_FIRST = ("test_nnunet_e2e.py", "test_real_ct.py", "test_trainers.py", "test_demo.py", "test_benchmark.py",
                 "test_planner.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a file is kept
