"""The training-step benchmark runs end to end in CI-sized form and reports ratios against nnU-Net's U-Net."""
import json

import pytest

from nnunet_dyntransnet.benchmark import default_plan, entry, format_table


def test_benchmark_small_patch_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert entry(["--patch", "16x32x32", "--repeats", "1", "--warmup", "0", "--device", "cpu", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    names = [r["network"] for r in result["results"]]
    assert names[0].startswith("PlainConvUNet") and "DynTransNet" in names
    assert result["results"][0]["train_step_ratio"] == 1.0
    assert all(r["train_step_s"] > 0 and r["parameters"] > 0 and r["forward_gflops_per_sample"] > 0
               for r in result["results"])
    assert "| DynTransNet |" in capsys.readouterr().out
    assert format_table(result).count("\n") == len(names) + 3


def test_default_plan_follows_nnunet_topology():
    plan = default_plan([128, 128, 128])
    arch = plan.network_arch_init_kwargs
    assert arch["features_per_stage"] == [32, 64, 128, 256, 320, 320]
    assert [list(s) for s in arch["strides"]] == [[1, 1, 1]] + [[2, 2, 2]] * 5
    with pytest.raises(ValueError, match="nearest valid one"):
        default_plan([100, 100, 100])
