"""The baselines' table: patch adaptation and refusals, by hand (building and training: test_trainers.py)."""
from types import SimpleNamespace

import pytest

from nnunet_dyntransnet.baseline_networks import (BASELINES, BaselineConfigurationError, adapt_configuration, adapted_patch,
                                          build_baseline)


class _Configuration(SimpleNamespace):
    """The two attributes of nnU-Net's ConfigurationManager that the baselines read."""

    @property
    def patch_size(self):
        return self.configuration["patch_size"]


def _plan(patch, strides):
    return _Configuration(configuration={"patch_size": list(patch)}, network_arch_init_kwargs=dict(
        features_per_stage=[8, 16, 32, 64][: len(strides)], strides=strides, kernel_sizes=[[3] * len(patch)] * len(strides)))


def test_patch_rounded_up_to_the_multiple():
    assert adapted_patch([80, 160, 160], [32, 32, 32]) == [96, 160, 160]
    assert adapted_patch([20, 48, 40], [8, 8, 8]) == [24, 48, 40]
    assert adapted_patch([16, 32, 32], [32, 32, 32], min_cells=2) == [64, 32, 32]  # SwinUNETR needs > 1 cell


def test_adaptation_is_in_place_idempotent_and_follows_the_plan_strides():
    plan = _plan([20, 48, 40], [[1, 1, 1], [1, 2, 2], [2, 2, 2]])
    assert adapt_configuration("SwinUNETR", plan, "3d_fullres") == ([20, 48, 40], [32, 64, 64])
    assert plan.patch_size == [32, 64, 64] and adapt_configuration("SwinUNETR", plan)[1] == [32, 64, 64]
    plan = _plan([20, 48, 40], [[1, 1, 1], [1, 2, 2], [2, 2, 2]])
    assert adapt_configuration("DynUNet", plan)[1] == [20, 48, 40]  # the plan's own strides (2, 4, 4) divide it


def test_configurations_a_network_cannot_run_are_refused():
    with pytest.raises(BaselineConfigurationError, match="nnUNetTrainerDeepLabV3Plus: DeepLabV3\\+ .* is a 2D network "
                                                         "and cannot train the 3D configuration 3d_fullres; train it "
                                                         "on '2d' instead"):
        adapt_configuration("DeepLabV3Plus", _plan([16, 32, 32], [[1, 1, 1], [2, 2, 2]]), "3d_fullres")
    with pytest.raises(BaselineConfigurationError, match="VNet repeats the input to 16 channels"):
        build_baseline("VNet", _plan([16, 32, 32], [[1, 1, 1], [2, 2, 2]]), 3, 2)
    with pytest.raises(ValueError, match="unknown baseline 'TransUNet'"):
        build_baseline("TransUNet", _plan([16, 32, 32], [[1, 1, 1], [2, 2, 2]]), 1, 2)


def test_every_baseline_names_its_library_and_row():
    assert {s.library for s in BASELINES.values()} == {"monai", "segmentation-models-pytorch"}
    assert {s.paper_row for s in BASELINES.values()} == {"Table 4", "Table 5"}
