"""Rotary positions: scores depend on token offsets only, and attention stops being permutation invariant."""
import pytest
import torch

from nnunet_dyntransnet.network.attention import DynamicBiasAttention
from nnunet_dyntransnet.network.rotary import AxialRotaryEmbedding, apply_rotary, apply_rotary_real


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


def _rotations(head_dim, window, base=100.0):
    """One (head_dim x head_dim) rotation per token of ``window``, built from the documented rule alone: pair p
    turns channels (2p, 2p+1) about axis p % dims by coordinate * base ** (-(p // dims) / n_axis), where n_axis
    counts the pairs of that axis."""
    import itertools
    import math

    dims, pairs = len(window), head_dim // 2
    per_axis = [sum(1 for p in range(pairs) if p % dims == a) for a in range(dims)]
    mats = []
    for coord in itertools.product(*[range(w) for w in window]):  # window_partition's order: last axis fastest
        r = torch.eye(head_dim)
        for p in range(pairs):
            axis = p % dims
            angle = coord[axis] * base ** (-(p // dims) / per_axis[axis])
            c, s = math.cos(angle), math.sin(angle)
            r[2 * p:2 * p + 2, 2 * p:2 * p + 2] = torch.tensor([[c, -s], [s, c]])
        mats.append(r)
    return torch.stack(mats)  # (N, d, d)


@pytest.mark.parametrize("fused", [True, False])
def test_rotary_attention_matches_rotated_paper_equation(fused):
    """D-MSA with rotary positions on both paths against the paper's equation with queries and keys rotated by
    explicit rotation matrices (per head: q_n -> R_n q_n, k_m -> R_m k_m)."""
    torch.manual_seed(2)
    attn = DynamicBiasAttention(16, 2, fused_attn=fused)
    with torch.no_grad():
        attn.bias_proj.weight.normal_(0, 0.5)
    window = (2, 3, 2)
    x = torch.randn(2, 12, 16)
    rot = _rotations(8, window)
    c, d = 16, 8
    wq, wk, wv = attn.qkv.weight.split(c, dim=0)
    bq, bk, bv = attn.qkv.bias.split(c, dim=0)
    heads = []
    for h in range(2):
        rows = slice(h * d, (h + 1) * d)
        q = torch.einsum("nij,bnj->bni", rot, x @ wq[rows].T + bq[rows])
        k = torch.einsum("nij,bnj->bni", rot, x @ wk[rows].T + bk[rows])
        v = x @ wv[rows].T + bv[rows]
        delta = torch.relu(x @ attn.bias_proj.weight[h] + attn.bias_proj.bias[h])
        heads.append(torch.softmax(q @ k.transpose(-2, -1) / d ** 0.5 + delta[:, None, :], dim=-1) @ v)
    expected = torch.cat(heads, dim=-1) @ attn.proj.weight.T + attn.proj.bias
    got = attn(x, AxialRotaryEmbedding(8, 3)(window))
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
    assert not torch.allclose(attn(x), expected, atol=1e-3), "the rotation changes the result"


@pytest.mark.parametrize("head_dim,heads", [(32, 2), (5, 3), (6, 1)])
def test_complex_rotation_equals_the_real_one_on_the_attentions_strided_queries(head_dim, heads):
    """apply_rotary multiplies complex views of q and k as the attention cuts them from its qkv projection
    (strided; an odd head dim leaves no whole pairs to view, and is copied first); the real form is the reference,
    values and gradients."""
    torch.manual_seed(0)
    cos, sin = AxialRotaryEmbedding(head_dim, 3)((2, 2, 4))
    qkv = torch.randn(3, 16, 3 * heads * head_dim, dtype=torch.float64).float().requires_grad_()
    results = []
    for rotate in (apply_rotary, apply_rotary_real):
        q, k, _ = qkv.reshape(3, 16, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = rotate(q, cos, sin) * 2 + rotate(k, cos, sin)
        grad, = torch.autograd.grad(out.square().sum(), qkv)
        results.append((out, grad))
    (out, grad), (ref, ref_grad) = results
    assert torch.allclose(out, ref, atol=1e-5) and torch.allclose(grad, ref_grad, atol=1e-4)
    half = apply_rotary(qkv.detach().bfloat16()[..., :head_dim], cos, sin)
    assert half.dtype == torch.bfloat16
    assert torch.allclose(half.float(), apply_rotary_real(qkv.detach()[..., :head_dim], cos, sin), atol=0.05)
