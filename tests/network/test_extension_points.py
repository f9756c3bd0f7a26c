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
