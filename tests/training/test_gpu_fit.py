"""The fit-to-GPU decision (``gpu_fit``): the estimate against the GPU measurement it is calibrated on,
and every branch of the decision with a stubbed free-memory figure (no GPU needed)."""
import json
from functools import partial
from pathlib import Path

import pytest

from nnunet_dyntransnet.network.gpu_fit import (BYTES_PER_UNIT, GiB, DoesNotFitError, checkpointing_mode,
                                                decide_checkpointing, fit_to_gpu, training_bytes)
from nnunet_dyntransnet.network import DynTransNet

H200 = Path(__file__).parents[2] / "measurements/results/h200_2026-11-28/train_128_bf16.json"


@pytest.fixture(scope="module")
def lits_like():
    """DynTransNet as it was measured on the H200 (128^3, six stages; the 0.1 defaults, MLP ratio 4, head dim 32,
    FM-M kept)."""
    from nnunet_dyntransnet.trainers.dyntransnet import LEGACY_0_1_OPTIONS

    from nnunet_dyntransnet.network.decoder_blocks import FeatureMix

    run = json.loads(H200.read_text())
    net = DynTransNet(1, 3, run["patch_size"], run["features_per_stage"], run["strides"], **LEGACY_0_1_OPTIONS)
    for module in net.modules():
        if isinstance(module, FeatureMix):
            module.recompute = False  # that network kept FM-M's intermediates (it is recomputed since 2026-11-30)
            # and built the concatenation [D, psi E], kept by W_f: D, the gate's ReLU output, the concatenation and
            # psi before and after the sigmoid (FM-M is a sum of convolutions since 2026-11-30, and keeps less)
            module.kept_elements = partial(_concatenating_fm_m_elements, module)
    return run, net


def _concatenating_fm_m_elements(fm, voxels: int) -> float:
    return float((fm.w_g.in_channels + fm.w_g.out_channels + fm.w_f.in_channels + 2) * voxels)


def test_the_constant_fitted_on_one_measurement_predicts_the_other(lits_like):
    """BYTES_PER_UNIT is the plain run's peak per counted unit; with it, the count of the checkpointed network
    (another set of kept tensors, plus the recomputation's transient) must predict the checkpointed run's peak,
    which played no part in the fit."""
    run, net = lits_like
    peaks = {r["network"]: r["peak_memory_gib"] * GiB for r in run["results"]}
    per_unit = peaks["DynTransNet"] / training_bytes(net, run["batch_size"], False) * BYTES_PER_UNIT
    assert per_unit == pytest.approx(BYTES_PER_UNIT, rel=0.01), "the constant is the plain run's"
    predicted = training_bytes(net, run["batch_size"], True)
    assert predicted == pytest.approx(peaks["DynTransNet, checkpointed"], rel=0.05)
    assert training_bytes(net, 4, False) == pytest.approx(2 * training_bytes(net, 2, False), rel=1e-6)


def test_decision_branches():
    plain, ckpt = 10 * GiB, 6 * GiB
    assert not decide_checkpointing(plain, ckpt, 40 * GiB).checkpointing
    on = decide_checkpointing(plain, ckpt, 8 * GiB)
    assert on.checkpointing and "would not fit" in on.message and "8.0 GiB free" in on.message
    with pytest.raises(DoesNotFitError, match=r"dyntransnet_plan_and_preprocess -d 501 -gpu_memory_target 4\b"):
        decide_checkpointing(plain, ckpt, 5 * GiB, dataset="501")
    # the environment variable wins both ways; the class's own option holds under auto
    assert decide_checkpointing(plain, ckpt, 40 * GiB, mode="on").checkpointing
    forced = decide_checkpointing(plain, ckpt, 5 * GiB, mode="off")
    assert not forced.checkpointing and "may run out of memory" in forced.message
    assert decide_checkpointing(plain, ckpt, 40 * GiB, class_default=True).checkpointing


@pytest.mark.parametrize("raw, mode", [("", "auto"), ("auto", "auto"), ("1", "on"), ("ON", "on"), ("no", "off")])
def test_environment_variable(monkeypatch, raw, mode):
    monkeypatch.setenv("DYNTRANSNET_CHECKPOINTING", raw)
    assert checkpointing_mode() == mode


def test_environment_variable_refuses_other_values(monkeypatch):
    monkeypatch.setenv("DYNTRANSNET_CHECKPOINTING", "sometimes")
    with pytest.raises(ValueError, match="DYNTRANSNET_CHECKPOINTING='sometimes'.*auto.*on.*off"):
        checkpointing_mode()


def test_decision_is_applied_to_the_network(lits_like):
    _, net = lits_like
    need, need_checkpointed = training_bytes(net, 2, False), training_bytes(net, 2, True)
    assert fit_to_gpu(net, 2, int(need / 0.8), mode="auto").checkpointing is False
    assert not net.encoder.stages[0].checkpoint_blocks and not net.decoder.checkpoint_levels
    assert fit_to_gpu(net, 2, int(need_checkpointed / 0.85), mode="auto").checkpointing is True
    assert net.encoder.stages[0].checkpoint_blocks and net.decoder.checkpoint_levels == {0}
    # the count follows the switch
    assert net.compute_conv_feature_map_size(net.patch_size) < 0.5 * need / BYTES_PER_UNIT / 2
