"""The extension points docs/developing.md offers, each used only as the docs say: a new attention and a new skip
fusion, written from their base classes' contracts, registered, and then built, planned (nnU-Net's memory count, as
the planner and fit-to-GPU read it), trained one step and run for prediction inside DynTransNet.

Issue 27: an attention written as the docs said broke the planner (``attention_output_elements`` missing), and a
fusion trained no step (``unchecked`` missing); the base classes now carry the whole contract.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnunet_dyntransnet.network import DynTransNet
from nnunet_dyntransnet.network.attention import ATTENTIONS, Attention, register_attention
from nnunet_dyntransnet.network.decoder_blocks import FUSIONS, Fusion, register_fusion

TINY = dict(input_channels=1, num_classes=3, patch_size=(16, 32, 32), features_per_stage=(8, 16, 32),
            strides=((1, 1, 1), (2, 2, 2), (2, 2, 2)))


class GatedAttention(Attention):
    """A new attention, from the contract alone: single projection, scaled dot product, a sigmoid gate."""

    def __init__(self, dim, num_heads, fused_attn=True):
        super().__init__(dim, num_heads, fused_attn)
        self.qkv, self.gate, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x, rotary=None):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out * torch.sigmoid(self.gate(x)))

    def saved_elements(self, tokens):
        return float(10 * self.dim * tokens)


class SumFusion(Fusion):
    """A new fusion, from the contract alone: ``F = W [D + E]``."""

    def __init__(self, conv_op, decoder_channels, encoder_channels, out_channels):
        super().__init__()
        self.w = conv_op(decoder_channels, out_channels, 1)

    def forward(self, decoder, skip):
        return self.w(decoder + skip)

    def saved_elements(self, voxels):
        return float(self.w.in_channels * voxels)


def _build_plan_train_predict(**options):
    net = DynTransNet(**TINY, **options)
    count = net.compute_conv_feature_map_size(list(TINY["patch_size"]))  # what nnU-Net's planners read
    assert count > 0
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    x, target = torch.randn(2, 1, *TINY["patch_size"]), torch.randint(0, 3, (2, *TINY["patch_size"]))
    before = [p.detach().clone() for p in net.parameters()]
    outputs = net(x)
    loss = F.cross_entropy(outputs[0] if isinstance(outputs, (list, tuple)) else outputs, target)
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, net.parameters())), "the step moved the weights"
    net.eval()
    with torch.no_grad():
        logits = net(x)
    logits = logits[0] if isinstance(logits, (list, tuple)) else logits
    assert logits.shape == (2, 3, *TINY["patch_size"]) and torch.isfinite(logits).all()
    return net


def test_a_new_attention_written_from_the_contract(monkeypatch):
    monkeypatch.setitem(ATTENTIONS, "gated", ATTENTIONS.get("gated"))  # restored after the test
    register_attention("gated")(GatedAttention)
    net = _build_plan_train_predict(attention="gated")  # with the default selective checkpointing
    assert any(isinstance(m, GatedAttention) for m in net.modules())
    _build_plan_train_predict(attention="gated", selective_checkpointing=False)
    with pytest.raises(TypeError, match="not a subclass of Attention"):
        register_attention("bare")(nn.MultiheadAttention)


def test_a_new_fusion_written_from_the_contract(monkeypatch):
    monkeypatch.setitem(FUSIONS, "sum", FUSIONS.get("sum"))
    register_fusion("sum", SumFusion)
    net = _build_plan_train_predict(fusion="sum")  # the decoder's levels are checkpointed: unchecked() runs
    assert any(isinstance(m, SumFusion) for m in net.modules())
    with pytest.raises(TypeError, match="not a subclass of Fusion"):
        register_fusion("bare", nn.Identity)


def test_a_new_baseline_written_from_the_contract(monkeypatch):
    """docs/developing.md: a BaselineSpec, registered, and a three-line BaselineTrainer; the network is built from a
    plan (its patch rounded up to what it needs), trains a step and predicts; the benchmark finds its row."""
    from nnunet_dyntransnet.baseline_networks import BASELINES, BaselineSpec, register_baseline
    from nnunet_dyntransnet.benchmark.networks import default_plan, network_of_trainer
    from nnunet_dyntransnet.trainers.baselines import BaselineTrainer

    def build(configuration_manager, in_channels, classes):
        conv = nn.Conv3d if len(configuration_manager.patch_size) == 3 else nn.Conv2d
        return nn.Sequential(conv(in_channels, 8, 3, padding=1), nn.ReLU(), conv(8, classes, 1))

    monkeypatch.setitem(BASELINES, "Tiny", None)
    register_baseline("Tiny", BaselineSpec("Tiny net", "torch", (2, 3), lambda cm: (8,) * len(cm.patch_size), build,
                                           "none"))

    class nnUNetTrainerTiny(BaselineTrainer):
        baseline = "Tiny"

    plan = default_plan([16, 32, 32])
    plan.configuration["patch_size"] = [12, 32, 32]  # not a multiple of 8: rounded up, as the trainer would
    net = nnUNetTrainerTiny.build_network_architecture(None, plan, 1, 3)
    assert plan.patch_size == [16, 32, 32]
    x, target = torch.randn(2, 1, *plan.patch_size), torch.randint(0, 3, (2, *plan.patch_size))
    loss = F.cross_entropy(net(x), target)
    loss.backward()
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    with torch.no_grad():
        assert net.eval()(x).shape == (2, 3, *plan.patch_size)
    assert network_of_trainer(nnUNetTrainerTiny) == "Tiny net"
    with pytest.raises(TypeError, match="not a BaselineSpec"):
        register_baseline("Bad", build)


def test_a_new_converter_written_from_the_contract(tmp_path, monkeypatch):
    """docs/developing.md: a finder (release folder -> cases), a DatasetSpec registered, and convert(kind): the result
    is a dataset nnU-Net's own integrity check accepts (what its planner reads first)."""
    import numpy as np
    from nnunet_helpers import write_volume
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    from nnunet_dyntransnet.dataset_conversion import cli
    from nnunet_dyntransnet.dataset_conversion.raw_dataset import Case, ConversionError

    release = tmp_path / "release"
    for i in range(2):
        label = np.zeros((8, 16, 16), np.uint8)
        label[2:6, 4:12, 4:12] = 1
        label[3:5, 6:9, 6:9] = 2
        write_volume(release / "scans" / f"scan{i}.nii.gz", (label * 50).astype(np.float32))
        write_volume(release / "masks" / f"scan{i}.nii.gz", label)

    def find_pairs(src):
        scans = sorted((src / "scans").glob("*.nii.gz"))
        if not scans:
            raise ConversionError(f"{src}: no scans/ folder; pass the release folder")
        return [Case(f"pair_{i:03d}", s, src / "masks" / s.name) for i, s in enumerate(scans)], [], "scans+masks"

    monkeypatch.setitem(cli.DATASETS, "pairs", None)
    cli.register_dataset("pairs", cli.DatasetSpec(find_pairs, 977, "Pairs", "CT", "a test release", "-", "-"))
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    assert cli.convert("pairs", [str(release)]) == 0
    dataset = tmp_path / "raw" / "Dataset977_Pairs"
    verify_dataset_integrity(str(dataset), num_processes=1)
    assert sorted(p.name for p in (dataset / "imagesTr").iterdir()) == ["pair_000_0000.nii.gz", "pair_001_0000.nii.gz"]
    with pytest.raises(TypeError, match="not a DatasetSpec"):
        cli.register_dataset("bad", find_pairs)


def test_a_new_report_metric_written_from_the_contract(tmp_path, monkeypatch):
    """docs/developing.md: a Metric registered; every report then scores it per case and class, in its CSV, its
    statistics and its tables, under its own label."""
    import csv
    import json

    import numpy as np
    from nnunet_helpers import write_volume

    from nnunet_dyntransnet.evaluation import cli
    from nnunet_dyntransnet.evaluation.metrics import EXTRA_METRICS, Metric, register_metric

    def volume_error_ml(pred, gt, spacing):
        return abs(int(pred.sum()) - int(gt.sum())) * float(np.prod(spacing)) / 1000 if gt.any() else None

    monkeypatch.setitem(EXTRA_METRICS, "volume_error", None)
    register_metric(Metric("volume_error", "volume error (ml)", volume_error_ml))
    truth = np.zeros((6, 12, 12), np.uint8)
    truth[1:5, 2:10, 2:10] = 1
    pred = truth.copy()
    pred[1, 2:10, 2:10] = 0  # one slice of 64 voxels missed
    write_volume(tmp_path / "labels" / "c0.nii.gz", truth, spacing=(1.0, 1.0, 2.0))
    write_volume(tmp_path / "pred" / "c0.nii.gz", pred, spacing=(1.0, 1.0, 2.0))
    assert cli.main([str(tmp_path / "pred"), "--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "r"),
                     "-np", "1"]) == 0
    (liver,) = [r for r in csv.DictReader((tmp_path / "r" / "metrics_per_case.csv").open()) if r["class"] == "liver"]
    assert float(liver["volume_error"]) == pytest.approx(64 * 2.0 / 1000)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["statistics"]["pred"]["tumor"]["volume_error"]["undefined"] == 1  # no tumor: undefined, not 0
    assert "volume error (ml)" in (tmp_path / "r" / "report.md").read_text()
    with pytest.raises(ValueError, match="built-in"):
        register_metric(Metric("dice", "Dice again", volume_error_ml))
