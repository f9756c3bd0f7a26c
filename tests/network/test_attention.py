"""D-MSA: fused vs reference path, the per-key bias against the paper's equation, gradients."""
import pytest
import torch
import torch.nn.functional as F

from nnunet_dyntransnet.network.attention import DynamicBiasAttention, attention_with_key_bias


def _paper_equation(attn: DynamicBiasAttention, x: torch.Tensor) -> torch.Tensor:
    """Per-head loop over the paper's equations, with weights sliced out of the module."""
    c = x.shape[-1]
    d = attn.head_dim
    wq, wk, wv = attn.qkv.weight.split(c, dim=0)
    bq, bk, bv = attn.qkv.bias.split(c, dim=0)
    heads = []
    for h in range(attn.num_heads):
        rows = slice(h * d, (h + 1) * d)
        q = x @ wq[rows].T + bq[rows]
        k = x @ wk[rows].T + bk[rows]
        v = x @ wv[rows].T + bv[rows]
        scores = q @ k.transpose(-2, -1) / d ** 0.5
        if attn.bias_proj is not None:
            delta = torch.relu(x @ attn.bias_proj.weight[h] + attn.bias_proj.bias[h])  # (B, N): one value per key
            scores = scores + delta[:, None, :]
        heads.append(torch.softmax(scores, dim=-1) @ v)
    return torch.cat(heads, dim=-1) @ attn.proj.weight.T + attn.proj.bias


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


@pytest.mark.parametrize("dynamic_bias", [True, False])
@pytest.mark.parametrize("fused", [True, False])
def test_matches_paper_equation(dynamic_bias, fused):
    torch.manual_seed(0)
    attn = DynamicBiasAttention(24, 3, dynamic_bias=dynamic_bias, fused_attn=fused)
    with torch.no_grad():  # make the bias large enough to matter
        if attn.bias_proj is not None:
            attn.bias_proj.weight.normal_(0, 0.5)
    x = torch.randn(2, 37, 24)
    assert _rel_err(attn(x), _paper_equation(attn, x)) < 1e-5


def test_fused_and_reference_agree_with_gradients():
    torch.manual_seed(1)
    fused = DynamicBiasAttention(64, 4, fused_attn=True)
    with torch.no_grad():
        fused.bias_proj.weight.normal_(0, 0.3)
    reference = DynamicBiasAttention(64, 4, fused_attn=False)
    reference.load_state_dict(fused.state_dict())
    x1 = torch.randn(3, 50, 64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    g = torch.randn(3, 50, 64)
    out1, out2 = fused(x1), reference(x2)
    assert _rel_err(out1, out2) < 1e-5
    (out1 * g).sum().backward()
    (out2 * g).sum().backward()
    assert _rel_err(x1.grad, x2.grad) < 1e-5
    for (name, p1), p2 in zip(fused.named_parameters(), reference.parameters()):
        assert _rel_err(p1.grad, p2.grad) < 1e-5, name
    assert fused.bias_proj.weight.grad.abs().sum() > 0
    assert fused.bias_proj.bias.grad.abs().sum() > 0


def test_bias_shape_is_per_key_and_changes_attention():
    torch.manual_seed(2)
    attn = DynamicBiasAttention(16, 2)
    x = torch.randn(2, 10, 16)
    assert attn.key_bias(x).shape == (2, 2, 1, 10)
    plain = DynamicBiasAttention(16, 2, dynamic_bias=False)
    plain.load_state_dict({k: v for k, v in attn.state_dict().items() if not k.startswith("bias_proj")})
    with torch.no_grad():
        attn.bias_proj.bias.fill_(0.0)
        attn.bias_proj.weight.fill_(0.0)
    # a zero bias is plain MSA; a non-zero one must change the output
    assert torch.allclose(attn(x), plain(x), atol=1e-6)
    with torch.no_grad():
        attn.bias_proj.weight.normal_(0, 1.0)
    assert not torch.allclose(attn(x), plain(x), atol=1e-3)


def test_plain_msa_has_no_bias_parameters():
    assert DynamicBiasAttention(32, 2, dynamic_bias=False).bias_proj is None
    assert not DynamicBiasAttention(32, 2, dynamic_bias=False).dynamic_bias


@pytest.mark.parametrize("dim,heads", [(10, 3), (8, 0)])
def test_bad_head_count_raises(dim, heads):
    with pytest.raises(ValueError, match="divisible"):
        DynamicBiasAttention(dim, heads)


def test_fused_path_folds_the_bias_and_passes_no_mask(monkeypatch):
    calls = []
    original = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        calls.append((attn_mask is None, q.shape[-1], k.shape[-1], v.shape[-1]))
        return original(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    DynamicBiasAttention(16, 2)(torch.randn(1, 5, 16))  # head dim 8 -> 8 + bias channel, padded to 16
    DynamicBiasAttention(16, 2, dynamic_bias=False)(torch.randn(1, 5, 16))
    assert calls == [(True, 16, 16, 16), (True, 8, 8, 8)]


@pytest.mark.parametrize("head_dim", [7, 8, 32, 33])
def test_folded_bias_matches_explicit_softmax(head_dim):
    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 3, 11, head_dim) for _ in range(3))
    bias = torch.rand(2, 3, 1, 11) * 4
    expected = torch.softmax(q @ k.transpose(-1, -2) / head_dim ** 0.5 + bias, dim=-1) @ v
    assert _rel_err(attention_with_key_bias(q, k, v, bias), expected) < 1e-5
