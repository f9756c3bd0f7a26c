"""The benchmark in CI-sized form: every network builds from one plan; the command runs every measurement end to end
(for nnU-Net's U-Net, DynTransNet and a baseline), with ratios from one run."""
import json

import pytest
import torch

from nnunet_dyntransnet.benchmark import default_plan, entry, format_table
from nnunet_dyntransnet.benchmark.attention_cost import attention_bias_cost, stage_attention_shapes
from nnunet_dyntransnet.benchmark.cli import default_case_shape
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
    """One real run, every measurement in its own child process: what it reports is the built networks' and the
    ratios are against the U-Net of the same run."""
    from nnunet_dyntransnet.benchmark.networks import build_networks

    out = tmp_path / "bench.json"
    assert entry(["--patch", "16x32x32", "--case", "16x32x32", "--repeats", "1", "--warmup", "0", "--device", "cpu",
                  "--rounds", "1", "--networks", "PlainConvUNet", "DynTransNet", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["complete"] is True and result["rounds"] == 1
    rows = {r["network"]: r for r in result["results"]}
    assert list(rows) == ["PlainConvUNet", "DynTransNet"]
    builders = build_networks(default_plan([16, 32, 32]), 1, 3, names=list(rows))
    for name, r in rows.items():
        assert "errors" not in r, (name, r.get("errors"))
        assert r["parameters"] == sum(p.numel() for p in builders[name]().parameters()), name
        for key, ratio in (("infer_s", "infer_ratio"), ("infer_mirrored_s", "infer_mirrored_ratio"),
                           ("peak_memory_gib", "peak_memory_ratio")):
            assert r[ratio] == pytest.approx(r[key] / rows["PlainConvUNet"][key]), (name, key)
        assert r["peak_rss_gib"] > r["peak_memory_gib"], "RSS above the pre-build baseline is part of the peak"
    # the training step's ratio: DynTransNet's steps interleaved with the U-Net's in one child (one timed pair)
    assert len(rows["DynTransNet"]["train_step_ratio_steps"]) == 1
    assert rows["DynTransNet"]["train_step_ratio"] == pytest.approx(rows["DynTransNet"]["train_step_ratio_steps"][0])
    assert rows["DynTransNet"]["feature_map_size"] == \
        DynTransNet.from_plan(default_plan([16, 32, 32]), 1, 3).compute_conv_feature_map_size([16, 32, 32])
    printed = capsys.readouterr().out
    assert "| DynTransNet |" in printed and "| PlainConvUNet |" in printed
    assert format_table(result).count("\n| ") == len(rows) + 1


def test_rounds_alternate_between_the_networks_and_report_medians(tmp_path, monkeypatch):
    """Each round measures every network in turn (U-Net, DynTransNet, U-Net, ...); a figure is the median over
    rounds. The training-step ratio of a round comes from steps interleaved with the U-Net's (``train_paired``), the
    others from the round's two children; the reported ratio is the median over rounds. On CPU the peak memory is
    the memory child's, which runs with freed blocks unmapped; the timing child's peak (glibc's defaults) is kept
    beside it."""
    from nnunet_dyntransnet.benchmark import cli
    from nnunet_dyntransnet.benchmark.measure import LIVE_MEMORY_ENV

    calls = []
    step = {"PlainConvUNet": [1.0, 2.0, 1.5], "DynTransNet": [0.9, 2.2, 1.2]}  # a machine that slows in round 2
    pairs = [[0.9, 0.95, 0.85], [0.92, 0.9, 0.94], [0.88, 0.8, 0.89]]  # interleaved: the load cancels out
    heap = {"PlainConvUNet": 1.0, "DynTransNet": 1.5}
    live = {"PlainConvUNet": 1.0, "DynTransNet": 0.8}

    def fake(task, timeout=None, env=None):
        calls.append((task["network"], task["measure"], env))
        i = sum(1 for c in calls if c[:2] == (task["network"], task["measure"])) - 1
        if task["measure"] == "train_paired":
            assert task["reference"] == "PlainConvUNet"
            return {"network": task["network"], "measure": "train_paired", "pair_ratios": pairs[i]}
        memory = task["measure"] == "train_memory"
        peak = (live if memory else heap)[task["network"]]
        return {"network": task["network"], "measure": task["measure"], "parameters": 10,
                "forward_gflops_per_sample": 1.0, "feature_map_size": 5, "train_step_s": step[task["network"]][i],
                "peak_memory_gib": peak, "peak_rss_gib": peak + 1, "patch": [16, 32, 32]}

    monkeypatch.setattr(cli, "run_in_child", fake)
    result = cli.main(["--patch", "16x32x32", "--device", "cpu", "--no-inference", "--rounds", "3",
                       "--networks", "PlainConvUNet", "DynTransNet", "--out", str(tmp_path / "b.json")])
    assert calls == [("PlainConvUNet", "train", None), ("PlainConvUNet", "train_memory", LIVE_MEMORY_ENV),
                     ("DynTransNet", "train", None), ("DynTransNet", "train_paired", None),
                     ("DynTransNet", "train_memory", LIVE_MEMORY_ENV)] * 3
    dyn = {r["network"]: r for r in result["results"]}["DynTransNet"]
    assert dyn["train_step_s"] == 1.2  # median of 0.9, 2.2, 1.2
    assert dyn["train_step_ratio_rounds"] == pytest.approx([0.9, 0.92, 0.88])  # each round's median pair
    assert dyn["train_step_ratio"] == pytest.approx(0.9)
    assert len(dyn["train_step_ratio_steps"]) == 9
    assert (dyn["peak_memory_ratio"], dyn["default_malloc_peak_memory_ratio"]) == pytest.approx((0.8, 1.5))
    assert "| 0.90 |" in cli.format_table(result) and "| 0.80 | 1.50 | 1.50 |" in cli.format_table(result)
    written = json.loads((tmp_path / "b.json").read_text())
    assert written["rounds"] == 3 and written["reliable"] is True and "UNRELIABLE" not in cli.format_table(result)


def test_rounds_that_disagree_make_the_ratio_unreliable():
    """Issue 28, case 11: five rounds on a busy machine gave 1.00, 4.34, 4.38, 3.19, 0.39 and the median, 3.19x, was
    printed as the result without a word. Now the row, the document and the table say it is unreliable."""
    from nnunet_dyntransnet.benchmark import cli

    busy = [1.00, 4.34, 4.38, 3.19, 0.39]
    rounds = [[{"network": "PlainConvUNet", "train_step_s": 1.0},
               {"network": "DynTransNet", "train_step_s": r, "paired_step_ratio": r, "paired_step_ratios": [r]}]
              for r in busy]
    rows = cli.combine_rounds(rounds)
    assert rows[1]["train_step_ratio"] == pytest.approx(3.19)
    assert rows[1]["unreliable"] == {"train_step_ratio": pytest.approx((4.38 - 0.39) / 3.19, abs=1e-3)}
    (line,) = cli.unreliable_lines(rows)
    assert line.startswith("UNRELIABLE: DynTransNet's train step ratio 3.19 is the median of rounds that disagree "
                           "(1.00, 4.34, 4.38, 3.19, 0.39")
    quiet = [[{"network": "PlainConvUNet", "train_step_s": 1.0},
              {"network": "DynTransNet", "train_step_s": r, "paired_step_ratio": r, "paired_step_ratios": [r]}]
             for r in (1.10, 1.17, 1.14)]
    assert "unreliable" not in cli.combine_rounds(quiet)[1]


def test_interleaved_steps_take_turns(monkeypatch):
    """The two networks' steps alternate A, B, A, B: a load that comes and goes falls on both of a pair."""
    from nnunet_dyntransnet.benchmark import measure

    order = []
    monkeypatch.setattr(measure, "_train_step", lambda model, *a: (lambda: order.append(model) or 0.1))
    times = measure.time_train_steps_interleaved({"a": "A", "b": "B"}, 1, 1, 3, [8, 8, 8], torch.device("cpu"),
                                                 repeats=3, warmup=1)
    assert order == ["A", "B"] * 4 and times == {"a": [0.1] * 3, "b": [0.1] * 3}


def test_traffic_counts_the_memory_bound_bytes():
    """An elementwise chain moves its inputs and outputs; views move nothing; a matmul is counted apart, with FLOPs."""
    from nnunet_dyntransnet.benchmark.traffic import step_traffic

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv3d(1, 3, 1)

        def forward(self, x):
            return torch.relu(self.conv(x)).permute(0, 1, 2, 3, 4)

    counted = step_traffic(Tiny(), 2, 1, 3, [4, 4, 4])
    assert counted["flops"] > 0 and counted["matmul_bytes"] > 0
    # relu reads and writes 2x3x64 fp32 values (1536 B each way); its backward and the loss add more
    assert counted["other_bytes"] >= 2 * 2 * 3 * 64 * 4
    assert "permute" not in counted["top_other_ops"]


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
    assert [(s["windows"], s["tokens"]) for s in shapes] == [(1024, 64), (2, 4096), (2, 512), (2, 64)]
    one_conv_stage = DynTransNet.from_plan(default_plan([128, 128, 128]), 1, 3, conv_stages=1).layout
    assert [s["windows"] for s in stage_attention_shapes(one_conv_stage, batch=2)] == [8192, 1024, 2, 2, 2]
    rows = attention_bias_cost(DynTransNet.from_plan(default_plan([16, 32, 32]), 1, 3).layout, 1, torch.device("cpu"),
                               head_dims=(16,), max_windows=2, repeats=1)
    assert rows and all(r["plain_s"] > 0 and r["dmsa_s"] > 0 and r["ratio"] > 0 for r in rows)
    assert {r["head_dim"] for r in rows} >= {16}


def test_variant_names():
    """``--networks 'DynTransNet[option=value,...]'`` measures a variant; unknown options are refused by name."""
    from nnunet_dyntransnet.benchmark.networks import variant_options

    assert variant_options("DynTransNet[mlp_ratio=2, attention=msa]") == {"mlp_ratio": 2, "attention": "msa"}
    assert variant_options("PlainConvUNet") is None and variant_options("DynTransNet") is None
    with pytest.raises(ValueError, match="'mlp=2' is not OPTION=VALUE with an option of DynTransNet"):
        variant_options("DynTransNet[mlp=2]")


def test_memory_timeline_reports_the_peak_of_live_tensors(tmp_path):
    """measurements/memory_timeline.py: one profiled step per network; the peak holds the parameters and AdamW's
    state (twice the parameters) at least, and the ratio is against the first network."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "measurements" / "memory_timeline.py"
    spec = importlib.util.spec_from_file_location("memory_timeline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--patch", "16x32x32", "--networks", "PlainConvUNet", "DynTransNet", "--torch-instance-norm",
                          "--out", str(tmp_path / "peaks.json")])
    assert json.loads((tmp_path / "peaks.json").read_text()) == result
    builders = module.build_networks(module.default_plan([16, 32, 32]), 1, 3, names=["PlainConvUNet", "DynTransNet"])
    for name, r in result["results"].items():
        params = sum(p.numel() for p in builders[name.split(",")[0]]().parameters()) * 4 / 2 ** 20
        # the profiler files tensors made from parameters (FM-M's concatenated 1x1 weights) with them
        assert params * 0.99 <= r["at_peak_mib"]["parameter"] <= params * 1.1, name
        assert r["at_peak_mib"]["optimizer_state"] == pytest.approx(2 * params, rel=0.01), name
        assert r["peak_mib"] > 3 * params and 0 <= r["peak_at"] <= 1, name
    assert result["results"]["PlainConvUNet"]["peak_ratio"] == 1.0
    assert len(result["results"]) == 3


def test_pointwise_script_times_both_ways_and_checks_the_gradients(monkeypatch, tmp_path):
    """measurements/pointwise.py, on one small case: both ways timed, gradients compared, the JSON written."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "measurements" / "pointwise.py"
    spec = importlib.util.spec_from_file_location("pointwise_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "CASES", [(4, 6, (4, 8, 8))])
    result = module.main(["--out", str(tmp_path / "pointwise.json")])
    assert json.loads((tmp_path / "pointwise.json").read_text()) == result
    case, = result["cases"]
    assert case["gradients_equal"] and set(case["forward_backward_ms"]) == {"convolution", "pointwise_conv"}
    assert case["ratio"] == pytest.approx(case["forward_backward_ms"]["pointwise_conv"] / case["forward_backward_ms"]["convolution"])


def test_cuda_without_cuda_is_refused_before_measuring(tmp_path, capsys, monkeypatch):
    """Issue 28, case 13: --device cuda without CUDA failed with a traceback after measuring."""
    import torch

    from nnunet_dyntransnet.benchmark import cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as e:
        cli.entry(["--patch", "16x32x32", "--device", "cuda", "--out", str(tmp_path / "r.json")])
    assert e.value.code == 2 and "torch sees no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
