"""FM-M, its ablation fusions and RM against their equations, computed by hand."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnunet_dyntransnet.network.conv_unit import ConvUnitSpec
from nnunet_dyntransnet.network.decoder_blocks import ConcatFusion, FeatureMix, ResidualRefine, WeightedSumFusion
from nnunet_dyntransnet.network.pointwise import pointwise_conv


def _conv1x1(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    w = conv.weight.reshape(conv.weight.shape[0], conv.weight.shape[1])
    return torch.einsum("oc,bc...->bo...", w, x) + conv.bias.reshape(1, -1, *([1] * (x.dim() - 2)))


@pytest.mark.parametrize("conv_op,spatial", [(nn.Conv3d, (5, 6, 7)), (nn.Conv2d, (9, 8))])
def test_feature_mix_matches_algorithm_2(conv_op, spatial):
    torch.manual_seed(0)
    fm = FeatureMix(conv_op, decoder_channels=6, encoder_channels=4, out_channels=5)
    d = torch.randn(2, 6, *spatial)
    e = torch.randn(2, 4, *spatial)
    g = _conv1x1(fm.w_g, d)
    x = _conv1x1(fm.w_x, e)
    psi = 1 / (1 + torch.exp(-_conv1x1(fm.w_psi, torch.clamp(g + x, min=0))))
    assert psi.shape == (2, 1, *spatial)
    expected = _conv1x1(fm.w_f, torch.cat([d, psi * e], dim=1))
    assert torch.allclose(fm(d, e), expected, atol=1e-5)
    assert torch.allclose(fm.gate(d, e), psi, atol=1e-6)


def test_feature_mix_closed_gate_drops_the_skip():
    torch.manual_seed(1)
    fm = FeatureMix(nn.Conv3d, 3, 3, 3)
    with torch.no_grad():
        fm.w_psi.bias.fill_(-1e4)
    d, e = torch.randn(1, 3, 4, 4, 4), torch.randn(1, 3, 4, 4, 4)
    only_decoder = torch.einsum("oc,bc...->bo...", fm.w_f.weight[:, :3, 0, 0, 0], d) + fm.w_f.bias.view(1, -1, 1, 1, 1)
    assert torch.allclose(fm(d, e), only_decoder, atol=1e-5)


def test_concat_fusion():
    torch.manual_seed(2)
    fuse = ConcatFusion(nn.Conv2d, 3, 2, 4)
    d, e = torch.randn(2, 3, 5, 5), torch.randn(2, 2, 5, 5)
    assert torch.allclose(fuse(d, e), _conv1x1(fuse.w_f, torch.cat([d, e], 1)), atol=1e-6)


def test_weighted_sum_fusion():
    fuse = WeightedSumFusion(nn.Conv3d, 4, 4, 4)
    with torch.no_grad():
        fuse.weights.copy_(torch.tensor([0.25, 2.0]))
    d, e = torch.randn(1, 4, 3, 3, 3), torch.randn(1, 4, 3, 3, 3)
    assert torch.allclose(fuse(d, e), 0.25 * d + 2.0 * e)
    with pytest.raises(ValueError, match="equal channel counts"):
        WeightedSumFusion(nn.Conv3d, 4, 8, 4)


def _instance_norm(y, gamma, beta, eps=1e-5):
    dims = tuple(range(2, y.dim()))
    mean = y.mean(dim=dims, keepdim=True)
    var = ((y - mean) ** 2).mean(dim=dims, keepdim=True)
    shape = (1, -1) + (1,) * len(dims)
    return (y - mean) / torch.sqrt(var + eps) * gamma.view(shape) + beta.view(shape)


def _leaky(z, slope=0.01):
    return torch.where(z > 0, z, slope * z)


@pytest.mark.parametrize("post_activation", [False, True])
@pytest.mark.parametrize("conv_op,conv_fn,kernel,spatial", [
    (nn.Conv3d, F.conv3d, (3, 3, 3), (6, 5, 4)),
    (nn.Conv3d, F.conv3d, (1, 3, 3), (4, 6, 6)),
    (nn.Conv2d, F.conv2d, (3, 3), (7, 6)),
])
def test_residual_refine_matches_algorithm_3(conv_op, conv_fn, kernel, spatial, post_activation):
    """Algorithm 3, ``X + LReLU(IN(Conv(LReLU(IN(Conv(X))))))``; with ``post_activation`` the same sum through one
    more LeakyReLU."""
    torch.manual_seed(3)
    rm = ResidualRefine(ConvUnitSpec(conv_op), 4, kernel, post_activation=post_activation)
    with torch.no_grad():  # non-trivial affine parameters
        for m in rm.modules():
            if isinstance(m, nn.modules.instancenorm._InstanceNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 4, *spatial)
    pad = tuple(k // 2 for k in kernel)
    y = x
    for unit in rm.body:
        conv, norm = unit[0], unit[1]
        y = _leaky(_instance_norm(conv_fn(y, conv.weight, conv.bias, padding=pad), norm.weight, norm.bias))
    expected = _leaky(x + y) if post_activation else x + y
    assert torch.allclose(rm(x), expected, atol=1e-5)


def test_residual_refine_refuses_a_post_activation_without_its_sum():
    with pytest.raises(ValueError, match="residual_refine=True"):
        ResidualRefine(ConvUnitSpec(nn.Conv3d), 4, (3, 3, 3), residual=False, post_activation=True)


def test_feature_mix_recomputed_in_backward_keeps_only_the_decoder_map_and_changes_nothing_else():
    torch.manual_seed(0)
    kept, recomputed = (FeatureMix(nn.Conv3d, 8, 8, 8) for _ in range(2))
    recomputed.load_state_dict(kept.state_dict())
    kept.recompute = False
    d, e = torch.randn(2, 8, 4, 6, 6), torch.randn(2, 8, 4, 6, 6)
    outs, grads, saved = [], [], []
    for fm in (kept, recomputed):
        storages = {}
        skip = {d.untyped_storage().data_ptr(), e.untyped_storage().data_ptr()} | {
            p.untyped_storage().data_ptr() for p in fm.parameters()}

        def pack(t):
            if t.untyped_storage().data_ptr() not in skip:
                storages[t.untyped_storage().data_ptr()] = t.numel()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = fm(d, e)
        out.square().mean().backward()
        outs.append(out)
        grads.append([p.grad for p in fm.parameters()])
        saved.append(sum(storages.values()))
    assert torch.equal(outs[0], outs[1])
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(*grads))
    voxels = 4 * 6 * 6
    # D, the gate's ReLU output (4 channels), psi, and W_f^E E (8)
    assert kept.saved_elements(voxels) == (8 + 4 + 1 + 8) * voxels and recomputed.saved_elements(voxels) == 8 * voxels
    # what autograd keeps besides the inputs: the intermediates when kept (the count less D, for a batch of two; the
    # concatenated 1x1 weights, 96 elements, besides), none when recomputed
    assert 0 <= saved[0] - 2 * (kept.saved_elements(voxels) - 8 * voxels) <= 96
    assert saved[1] == 0


def test_feature_mix_splits_its_fused_convolutions_rather_than_slicing_them():
    """Each slice's gradient is a zero-filled tensor of the whole convolution output (two per convolution, added);
    a split's is one concatenation."""
    fm = FeatureMix(nn.Conv3d, 8, 8, 8)
    out = fm.mix(torch.randn(1, 8, 4, 4, 4, requires_grad=True), torch.randn(1, 8, 4, 4, 4))
    edges, seen, todo = set(), set(), [out.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node not in seen:
            seen.add(node)
            edges |= {(node.name(), child.name()) for child, _ in node.next_functions if child is not None}
            todo.extend(child for child, _ in node.next_functions)
    assert "SplitWithSizesBackward0" in {parent for parent, _ in edges}
    # the only slices are those of W_f's weight (its columns for D and for E), whose gradients are the parameter's
    assert {child for parent, child in edges if parent == "SliceBackward0"} == {"torch::autograd::AccumulateGrad"}


@pytest.mark.parametrize("conv,spatial", [(F.conv3d, (3, 4, 5)), (F.conv2d, (6, 7))])
@pytest.mark.parametrize("with_bias", [True, False])
def test_pointwise_conv_is_a_1x1_convolution(conv, spatial, with_bias):
    torch.manual_seed(0)
    x = torch.randn(2, 5, *spatial, requires_grad=True)
    weight = torch.randn(3, 5, *(1,) * len(spatial), requires_grad=True)
    bias = torch.randn(3, requires_grad=True) if with_bias else None
    inputs = (x, weight, bias) if with_bias else (x, weight)
    ours, ref = pointwise_conv(x, weight, bias), conv(x, weight, bias)
    assert ours.shape == ref.shape and ours.is_contiguous()
    assert torch.allclose(ours, ref, atol=1e-5)
    g = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad(ours, inputs, g), torch.autograd.grad(ref, inputs, g)):
        assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("selective", [False, "transformer+decoder"])
def test_a_level_whose_gate_is_closed_does_not_see_its_skip(selective):
    """FM-M in the network, by its equation: with psi forced to 0 at every level, F = W_f^D D, so replacing every
    skip by noise leaves the output unchanged; FM-M fed (skip, decoder) instead of (decoder, skip) fails this
    (issue 27: with equal widths after the transposed convolution no shape test notices)."""
    from nnunet_dyntransnet.network import DynTransNet

    torch.manual_seed(0)
    net = DynTransNet(1, 2, (16, 32, 32), (8, 8, 8, 8), ((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2)),
                      window_size=4, max_global_tokens=64, deep_supervision=False,
                      selective_checkpointing=selective).eval()
    for fuse in net.decoder.fuse:
        fuse.w_psi.weight.data.zero_()
        fuse.w_psi.bias.data.fill_(-1e4)
    x = torch.randn(1, 1, 16, 32, 32)
    with torch.no_grad():
        reference = net(x)
        net.encoder.register_forward_hook(lambda m, i, skips: [torch.randn_like(s) for s in skips[:-1]] + [skips[-1]])
        assert torch.allclose(net(x), reference, atol=1e-5)


@pytest.mark.parametrize("selective,activation", [(False, False), ("transformer+decoder", False), (False, True)])
@pytest.mark.parametrize("rm_shortcut", ["fused", "decoder"])
def test_rm_adds_back_the_shortcut_it_is_given(rm_shortcut, selective, activation):
    """RM by its equation in the network: with every RM's units silenced (their last norm's affine at 0, so
    LeakyReLU(0) = 0), a level's output is what the residual adds back: FM-M's output (``rm_shortcut="fused"``, the
    paper) or the upsampled decoder map (``"decoder"``); the same under every checkpointing path."""
    from nnunet_dyntransnet.network import DynTransNet

    torch.manual_seed(0)
    net = DynTransNet(1, 2, (16, 32, 32), (8, 8, 8, 8), ((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2)),
                      window_size=4, max_global_tokens=64, deep_supervision=False, rm_shortcut=rm_shortcut,
                      selective_checkpointing=selective, activation_checkpointing=activation)
    for refine in net.decoder.refine:
        refine.body[-1][1].weight.data.zero_()
        refine.body[-1][1].bias.data.zero_()
    seen = {}
    for n, (up, refine) in enumerate(zip(net.decoder.upsample, net.decoder.refine)):
        up.register_forward_hook(lambda m, i, out, n=n: seen.__setitem__(("up", n), out.detach().clone()))
        # RM's input is FM-M's output on every path (a checkpointed level runs FM-M unhooked, as ``unchecked``)
        refine.register_forward_hook(lambda m, i, out, n=n: seen.update({("fuse", n): i[0].detach().clone(),
                                                                          ("refine", n): out.detach().clone()}))
    net(torch.randn(1, 1, 16, 32, 32)).sum().backward()  # with gradients: the checkpointed paths run
    for n in range(len(net.decoder.refine)):
        expected = seen[("up", n)] if rm_shortcut == "decoder" else seen[("fuse", n)]
        assert torch.allclose(seen[("refine", n)], expected, atol=1e-6), n


def test_an_unknown_rm_shortcut_is_refused_by_name():
    from nnunet_dyntransnet.network import DynTransNet

    with pytest.raises(ValueError, match="rm_shortcut='skip'"):
        DynTransNet(1, 2, (16, 32, 32), (8, 8, 8), ((1, 1, 1), (2, 2, 2), (2, 2, 2)), rm_shortcut="skip")

    with pytest.raises(ValueError, match="residual_refine=True"):
        DynTransNet(1, 2, (16, 32, 32), (8, 8, 8), ((1, 1, 1), (2, 2, 2), (2, 2, 2)), rm_shortcut="decoder",
                    residual_refine=False)
