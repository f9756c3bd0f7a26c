"""The benchmark in CI-sized form: every network builds from one plan; the command runs every measurement end to end
(for nnU-Net's U-Net, DynTransNet and a baseline), with ratios from one run."""
import json

import numpy as np
import pytest
import torch

from nnunet_dyntransnet.benchmark import default_plan, entry, format_table
from nnunet_dyntransnet.benchmark.attention_cost import attention_bias_cost, stage_attention_shapes
from nnunet_dyntransnet.benchmark.cli import default_case_shape
from nnunet_dyntransnet.benchmark.memory_check import memory_model_check
from nnunet_dyntransnet.network import DynTransNet


@pytest.mark.parametrize("patch", [[16, 32, 32]], ids=["3d"])
def test_every_network_builds_from_the_plan(patch):
    """What the command measures in its child processes, built here in-process: every core network and every
    baseline of this dimensionality, forward at the (possibly rounded-up) patch."""
    from nnunet_dyntransnet.benchmark.networks import NETWORKS, baselines_for, build_networks

    names = [n for n in NETWORKS if len(patch) == 3 or n != "Primus-S"] + baselines_for(len(patch))
    assert "DeepLabV3+" not in names and "SwinUNETR" in names  # the 2D network: test_trainers.py
    for name in names:
        plan = default_plan(patch)  # a fresh plan each: a baseline rounds its patch up in place
        net = build_networks(plan, 1, 3, deep_supervision=False, names=[name])[name]().eval()
        with torch.no_grad():
            out = net(torch.randn(1, 1, *plan.patch_size))
        assert tuple(out.shape) == (1, 3, *plan.patch_size), name


@pytest.mark.slow
def test_benchmark_small_patch_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert entry(["--patch", "16x32x32", "--case", "16x32x32", "--repeats", "1", "--warmup", "0", "--device", "cpu",
                  "--networks", "PlainConvUNet", "DynTransNet", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["complete"] is True
    rows = {r["network"]: r for r in result["results"]}
    assert list(rows) == ["PlainConvUNet", "DynTransNet"]
    assert rows["PlainConvUNet"]["train_step_ratio"] == 1.0 and rows["PlainConvUNet"]["infer_mirrored_ratio"] == 1.0
    for name, r in rows.items():
        assert "errors" not in r, (name, r.get("errors"))
        for key in ("train_step_s", "infer_s", "infer_mirrored_s", "peak_memory_gib", "peak_rss_gib", "parameters",
                    "forward_gflops_per_sample"):
            assert r[key] > 0, (name, key)
        assert r["peak_rss_gib"] > r["peak_memory_gib"], "RSS above the pre-build baseline is part of the peak"
    assert rows["DynTransNet"]["feature_map_size"] > 0 and rows["PlainConvUNet"]["feature_map_size"] > 0
    assert rows["DynTransNet"]["patch"] == [16, 32, 32] and rows["DynTransNet"]["train_tflops"] > 0
    printed = capsys.readouterr().out
    assert "| DynTransNet |" in printed and "| PlainConvUNet |" in printed
    assert format_table(result).count("\n| ") == len(rows) + 1


def test_default_plan_follows_nnunet_topology():
    plan = default_plan([128, 128, 128])
    arch = plan.network_arch_init_kwargs
    assert arch["features_per_stage"] == [32, 64, 128, 256, 320, 320]
    assert [list(s) for s in arch["strides"]] == [[1, 1, 1]] + [[2, 2, 2]] * 5
    with pytest.raises(ValueError, match="nearest valid one"):
        default_plan([100, 100, 100])


def test_inference_case_sizes():
    assert default_case_shape([128, 128, 128], "cuda") == [320, 532, 532]  # a 512x512x128 CT, resampled
    assert default_case_shape([32, 64, 64], "cpu") == [48, 96, 96]
    assert default_case_shape([64, 64], "cuda") == [96, 96]


def test_attention_stages_of_a_lits_plan():
    layout = DynTransNet.from_plan(default_plan([128, 128, 128]), 1, 3).layout
    shapes = stage_attention_shapes(layout, batch=2)
    assert [(s["windows"], s["tokens"]) for s in shapes] == [(1024, 512), (128, 512), (2, 4096), (2, 512), (2, 64)]
    rows = attention_bias_cost(DynTransNet.from_plan(default_plan([16, 32, 32]), 1, 3).layout, 1, torch.device("cpu"),
                               head_dims=(16,), max_windows=2, repeats=1)
    assert rows and all(r["plain_s"] > 0 and r["dmsa_s"] > 0 and r["ratio"] > 0 for r in rows)
    assert {r["head_dim"] for r in rows} >= {16}


@pytest.mark.slow
def test_memory_model_tracks_measured_memory():
    """On CPU (peak RSS above the baseline) the estimate follows the measurement across patch sizes."""
    result = memory_model_check([[16, 32, 32], [32, 32, 32], [32, 64, 64]], ["PlainConvUNet", "DynTransNet"], "cpu", 2)
    for name, stats in result["per_network"].items():
        assert stats["pearson_r"] > 0.95, (name, result["points"])
    est = np.array([p["estimate"] for p in result["points"]])
    assert (est > 0).all()


def test_variant_names():
    """``--networks 'DynTransNet[option=value,...]'`` measures a variant; unknown options are refused by name."""
    from nnunet_dyntransnet.benchmark.networks import variant_options

    assert variant_options("DynTransNet[mlp_ratio=2, attention=msa]") == {"mlp_ratio": 2, "attention": "msa"}
    assert variant_options("PlainConvUNet") is None and variant_options("DynTransNet") is None
    with pytest.raises(ValueError, match="'mlp=2' is not OPTION=VALUE with an option of DynTransNet"):
        variant_options("DynTransNet[mlp=2]")
