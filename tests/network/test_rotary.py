"""Rotary positions: scores depend on token offsets only, and attention stops being permutation invariant."""
import pytest
import torch

from nnunet_dyntransnet.network.attention import DynamicBiasAttention
from nnunet_dyntransnet.network.rotary import AxialRotaryEmbedding, apply_rotary


def _index(coord, window):
    i = 0
    for c, w in zip(coord, window):
        i = i * w + c
    return i


@pytest.mark.parametrize("head_dim,window", [(12, (4, 5, 3)), (32, (8, 8, 8)), (9, (6, 7))])
def test_scores_depend_on_offset_only(head_dim, window):
    torch.manual_seed(0)
    cos, sin = AxialRotaryEmbedding(head_dim, len(window))(window)
    n = torch.Size(window).numel()
    assert cos.shape == sin.shape == (n, head_dim // 2)
    qv, kv = torch.randn(head_dim), torch.randn(head_dim)
    q = apply_rotary(qv.expand(n, head_dim), cos, sin)
    k = apply_rotary(kv.expand(n, head_dim), cos, sin)
    a, b = (0,) * len(window), tuple(min(2, w - 1) for w in window)
    shift = tuple(1 if w > 3 else 0 for w in window)
    a2 = tuple(x + s for x, s in zip(a, shift))
    b2 = tuple(x + s for x, s in zip(b, shift))
    score = q[_index(a, window)] @ k[_index(b, window)]
    shifted = q[_index(a2, window)] @ k[_index(b2, window)]
    assert torch.allclose(score, shifted, atol=1e-5)
    # and the offset does matter
    assert not torch.allclose(score, q[_index(a, window)] @ k[_index(a, window)], atol=1e-3)


def test_rotation_keeps_norms_and_odd_channel():
    cos, sin = AxialRotaryEmbedding(5, 3)((2, 2, 2))
    x = torch.randn(3, 8, 5)
    y = apply_rotary(x, cos, sin)
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert torch.equal(y[..., 4], x[..., 4])
    assert torch.equal(y[:, 0], x[:, 0])  # the first token sits at the origin: no rotation


def test_positions_break_permutation_equivariance():
    torch.manual_seed(1)
    attn = DynamicBiasAttention(16, 2)
    rotary = AxialRotaryEmbedding(8, 2)((3, 3))
    x = torch.randn(2, 9, 16)
    perm = torch.randperm(9)
    assert torch.allclose(attn(x[:, perm]), attn(x)[:, perm], atol=1e-5)  # no positions: equivariant
    assert not torch.allclose(attn(x[:, perm], rotary), attn(x, rotary)[:, perm], atol=1e-3)


@pytest.mark.parametrize("fused", [True, False])
def test_rotary_applies_on_both_paths(fused):
    torch.manual_seed(2)
    a = DynamicBiasAttention(16, 2, fused_attn=True)
    b = DynamicBiasAttention(16, 2, fused_attn=fused)
    b.load_state_dict(a.state_dict())
    rotary = AxialRotaryEmbedding(8, 3)((2, 3, 2))
    x = torch.randn(2, 12, 16)
    assert torch.allclose(a(x, rotary), b(x, rotary), atol=1e-5)
