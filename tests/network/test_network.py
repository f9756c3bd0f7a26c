"""Generic DynTransNet tests over plan-like configurations and every ablation variant."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from nnunet_dyntransnet.network import DynTransNet
from nnunet_dyntransnet.network.conv_unit import ConvUnitSpec, InstanceNormByGroups

# name -> constructor arguments as a plan would give them (small widths for the CPU)
CONFIGS = {
    "3d_isotropic_4_stages": dict(
        patch_size=(32, 32, 32), features_per_stage=(4, 8, 16, 32),
        strides=((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2)), window_size=4, max_global_tokens=64,
    ),
    "3d_first_stride_1_2_2": dict(
        patch_size=(8, 32, 32), features_per_stage=(4, 8, 16),
        strides=((1, 1, 1), (1, 2, 2), (2, 2, 2)), kernel_sizes=((1, 3, 3), (1, 3, 3), (3, 3, 3)),
        window_size=4, max_global_tokens=64,
    ),
    "3d_two_stages": dict(patch_size=(16, 16, 16), features_per_stage=(4, 8), strides=((1, 1, 1), (2, 2, 2))),
    "2d_4_stages": dict(
        patch_size=(32, 48), features_per_stage=(4, 8, 16, 16),
        strides=((1, 1), (2, 2), (2, 2), (2, 2)), window_size=4, max_global_tokens=32,
    ),
    "2d_6_stages_anisotropic_pool": dict(
        patch_size=(64, 32), features_per_stage=(4, 8, 16, 32, 32, 32),
        strides=((1, 1), (2, 2), (2, 2), (2, 2), (2, 2), (2, 1)), depths=(1, 1, 2, 2, 1, 1),
    ),
}

VARIANTS = {
    "full": {},
    "msa": dict(attention="msa"),
    "concat": dict(fusion="concat"),
    "weighted_sum": dict(fusion="weighted_sum"),
    "no_rm": dict(residual_refine=False),
    "rm_from_decoder": dict(rm_shortcut="decoder"),
    "baseline": dict(attention="msa", fusion="concat", residual_refine=False),
    "reference_attention": dict(fused_attn=False),
    "overlapping_patches": dict(patch_embedding="overlapping"),
}


def _nnunet_ds_shapes(patch_size, strides):
    # nnU-Net's trainer: 1 / cumprod(pool kernels), all but the last
    scales = 1 / np.cumprod(np.vstack(strides), axis=0)
    return [tuple(int(round(p * s)) for p, s in zip(patch_size, scale)) for scale in scales[:-1]]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_shapes_gradients_no_nan(config, variant):
    torch.manual_seed(0)
    cfg = CONFIGS[config]
    net = DynTransNet(input_channels=2, num_classes=3, **cfg, **VARIANTS[variant])
    x = torch.randn(2, 2, *cfg["patch_size"])
    outputs = net(x)
    expected = _nnunet_ds_shapes(cfg["patch_size"], cfg["strides"])
    assert [tuple(o.shape[2:]) for o in outputs] == expected
    assert all(o.shape[:2] == (2, 3) for o in outputs)
    assert all(torch.isfinite(o).all() for o in outputs)
    sum((o * torch.randn_like(o)).sum() for o in outputs).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def test_deep_supervision_switch_and_weights_load_both_ways():
    cfg = CONFIGS["3d_isotropic_4_stages"]
    net = DynTransNet(1, 2, **cfg, deep_supervision=True)
    plain = DynTransNet(1, 2, **cfg, deep_supervision=False)
    plain.load_state_dict(net.state_dict())
    x = torch.randn(1, 1, *cfg["patch_size"])
    net.eval(), plain.eval()
    with torch.no_grad():
        full = plain(x)
        assert torch.is_tensor(full) and full.shape == (1, 2, 32, 32, 32)
        assert torch.allclose(net(x)[0], full, atol=1e-6)
        net.decoder.deep_supervision = False  # what nnU-Net's set_deep_supervision_enabled does
        assert torch.allclose(net(x), full, atol=1e-6)


def test_layout_uses_local_and_global_attention_by_token_count():
    net = DynTransNet(1, 2, **CONFIGS["3d_isotropic_4_stages"], conv_stages=1)
    kinds = [(s.kind, s.grid, s.window) for s in net.layout]
    assert kinds == [
        ("conv", (32, 32, 32), ()),
        ("local", (16, 16, 16), (4, 4, 4)),
        ("local", (8, 8, 8), (4, 4, 4)),
        ("global", (4, 4, 4), (4, 4, 4)),
    ]
    assert "tokens/attn" in net.describe()


def test_lits_like_layout():
    net = DynTransNet(
        1, 3, (128, 128, 128), (32, 64, 128, 256, 320, 320), [(1, 1, 1)] + [(2, 2, 2)] * 5,
    )
    assert [(s.kind, s.heads, s.tokens_per_attention) for s in net.layout] == [
        ("conv", 0, 0), ("conv", 0, 0), ("local", 4, 64), ("global", 8, 4096), ("global", 10, 512),
        ("global", 10, 64),
    ], "the stem and stage 1 convolutional (conv_stages=2), D-MSA from stage 2 on"
    assert [s.depth for s in net.layout] == [2, 2, 1, 1, 1, 1], "two conv units per conv stage, one block per stage"


def test_from_plan_reads_nnunet_arch_kwargs():
    plan = SimpleNamespace(
        patch_size=[16, 32, 32],
        network_arch_init_kwargs=dict(
            n_stages=3, features_per_stage=[4, 8, 16], strides=[[1, 1, 1], [1, 2, 2], [2, 2, 2]],
            kernel_sizes=[[1, 3, 3], [3, 3, 3], [3, 3, 3]], n_conv_per_stage=[2, 1, 3],
        ),
    )
    net = DynTransNet.from_plan(plan, 1, 4, enable_deep_supervision=False, head_dim=4, transformer_depth=None)
    assert [s.depth for s in net.layout] == [2, 1, 3]
    assert [s.depth for s in DynTransNet.from_plan(plan, 1, 4, head_dim=4).layout] == [2, 1, 1]
    assert [(s.kind, s.heads) for s in net.layout] == [("conv", 0), ("conv", 0), ("global", 4)]
    assert net.layout[0].kernel == (1, 3, 3)
    assert net(torch.randn(1, 1, 16, 32, 32)).shape == (1, 4, 16, 32, 32)
    with pytest.raises(ValueError, match="features_per_stage"):
        DynTransNet.from_plan(SimpleNamespace(patch_size=[16, 16], network_arch_init_kwargs={}), 1, 2)


BAD = {
    "patch_not_divisible": (dict(patch_size=(30, 32, 32), features_per_stage=(4, 8, 16),
                                 strides=((1, 1, 1), (2, 2, 2), (2, 2, 2))), "divisible by the total stride"),
    "first_stride_not_1": (dict(patch_size=(32, 32), features_per_stage=(4, 8), strides=((2, 2), (2, 2))),
                           r"strides\[0\] must be all 1"),
    "one_stage": (dict(patch_size=(32, 32), features_per_stage=(4,), strides=((1, 1),)), "at least 2 stages"),
    "strides_count": (dict(patch_size=(32, 32), features_per_stage=(4, 8, 16), strides=((1, 1), (2, 2))),
                      "strides has 2 entries but the network has 3 stages"),
    "stride_axes": (dict(patch_size=(32, 32), features_per_stage=(4, 8), strides=((1, 1), (2, 2, 2))),
                    r"strides\[1\]=\[2, 2, 2\] has 3 axes but the patch is 2D"),
    "even_kernel": (dict(patch_size=(32, 32), features_per_stage=(4, 8), strides=((1, 1), (2, 2)), kernel_sizes=2),
                    "must be odd"),
    "4d_patch": (dict(patch_size=(8, 8, 8, 8), features_per_stage=(4, 8), strides=((1,) * 4, (2,) * 4)),
                 "2 or 3 axes"),
    "bad_fusion": (dict(patch_size=(32, 32), features_per_stage=(4, 8), strides=((1, 1), (2, 2)), fusion="sum"),
                   "fusion='sum' is not one of"),
    "bad_attention": (dict(patch_size=(32, 32), features_per_stage=(4, 8), strides=((1, 1), (2, 2)), attention="mha"),
                      r"attention='mha' is not one of \['dmsa', 'msa'\]"),
    "zero_depth": (dict(patch_size=(32, 32), features_per_stage=(4, 8), strides=((1, 1), (2, 2)), depths=0),
                   "depths must be >= 1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_configuration_raises(case):
    kwargs, message = BAD[case]
    with pytest.raises(ValueError, match=message):
        DynTransNet(1, 2, **kwargs)


def test_forward_rejects_indivisible_input():
    net = DynTransNet(1, 2, (16, 16), (4, 8, 16), ((1, 1), (2, 2), (2, 2)))
    with pytest.raises(ValueError, match=r"input spatial size \[18, 16\]"):
        net(torch.randn(1, 1, 18, 16))


def _plan_with(**entries):
    arch = dict(features_per_stage=[4, 8, 16], strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2]], kernel_sizes=[[3, 3, 3]] * 3,
                n_conv_per_stage=[2, 2, 2], **entries)
    return SimpleNamespace(patch_size=[16, 32, 32], network_arch_init_kwargs=arch)


def test_the_plans_layer_entries_are_honoured():
    """A plan edited as nnU-Net's documentation shows (BatchNorm, another nonlinearity, no conv bias, three conv
    units per decoder level) builds exactly that; nnU-Net's own entries (dotted paths) build its default unit."""
    net = DynTransNet.from_plan(_plan_with(
        conv_op="torch.nn.modules.conv.Conv3d", conv_bias=False, norm_op="torch.nn.BatchNorm3d",
        norm_op_kwargs={"eps": 1e-3, "momentum": 0.2}, nonlin="torch.nn.GELU", nonlin_kwargs={},
        n_conv_per_stage_decoder=[1, 3], dropout_op=None), 1, 3, head_dim=4)
    units = [*net.encoder.stem, *(u for r in net.decoder.refine for u in r.body)]
    assert all(isinstance(u[1], nn.BatchNorm3d) and u[1].eps == 1e-3 and u[1].momentum == 0.2 for u in units)
    assert all(isinstance(u[2], nn.GELU) and u[0].bias is None for u in units)
    # nnU-Net's order is deepest first: the deepest level gets 1 unit, full resolution 3
    assert [len(r.body) for r in net.decoder.refine] == [1, 3]
    default = DynTransNet.from_plan(_plan_with(norm_op="torch.nn.modules.instancenorm.InstanceNorm3d",
                                               norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin="torch.nn.LeakyReLU",
                                               nonlin_kwargs={"inplace": True}), 1, 3, head_dim=4)
    assert isinstance(default.encoder.stem[0][1], InstanceNormByGroups) and default.encoder.stem[0][1].affine


def test_instance_norm_by_groups_is_torchs_instance_norm():
    torch.manual_seed(0)
    ours, torchs = InstanceNormByGroups(4, affine=True), nn.InstanceNorm3d(4, affine=True)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
        ours.bias.uniform_(-0.5, 0.5)
    torchs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 4, 3, 5, 6, requires_grad=True)
    grads = [torch.autograd.grad(norm(x).square().sum(), (x, norm.weight, norm.bias)) for norm in (ours, torchs)]
    assert torch.allclose(ours(x), torchs(x), atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(*grads))


@pytest.mark.parametrize("entries, message", [
    (dict(dropout_op="torch.nn.Dropout3d"), "dropout_op"),
    (dict(conv_op="torch.nn.Conv2d"), "does not match"),
    (dict(norm_op="torch.nn.NoSuchNorm"), "names no importable class"),
    (dict(n_conv_per_stage_decoder=[2, 2, 2]), "decoder levels"),
])
def test_plan_entries_it_cannot_honour_are_refused(entries, message):
    with pytest.raises(ValueError, match=message):
        DynTransNet.from_plan(_plan_with(**entries), 1, 3, head_dim=4)


def test_selective_checkpointing_by_part():
    tiny = dict(input_channels=1, num_classes=3, patch_size=(16, 32, 32), features_per_stage=(8, 16, 32),
                strides=((1, 1, 1), (2, 2, 2), (2, 2, 2)))
    net = DynTransNet(**tiny, selective_checkpointing="decoder+transformer")
    assert (net.encoder.selective_stem, net.decoder.selective_levels) == (False, {0, 1})
    assert all(stage.selective_blocks for stage in net.encoder.stages)
    assert net.selective_checkpointing == "transformer+decoder"  # in the parts' order
    net.set_selective_checkpointing(True)
    assert net.selective_checkpointing is True and net.encoder.selective_stem
    net.set_selective_checkpointing("")
    assert net.selective_checkpointing is False and not net.decoder.selective_levels
    with pytest.raises(ValueError, match="banana"):
        DynTransNet(**tiny, selective_checkpointing="transformer+banana")


def test_selective_depth_covers_the_highest_resolution_stages_and_levels():
    """Four stages: transformer stages 1-3, decoder levels 0-2; depth 2 covers stages 1-2 and levels 0-1."""
    four = dict(input_channels=1, num_classes=3, patch_size=(16, 32, 32), features_per_stage=(8, 16, 32, 32),
                strides=((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2)), conv_stages=1)
    net = DynTransNet(**four)
    assert [s.selective_blocks for s in net.encoder.stages] == [True, True, False]
    assert net.decoder.selective_levels == {0, 1}
    every = DynTransNet(**four, selective_depth=None)
    assert all(s.selective_blocks for s in every.encoder.stages) and every.decoder.selective_levels == {0, 1, 2}
    counts = [sum(n.saved_activation_elements([16, 32, 32]).values())
              for n in (DynTransNet(**four, selective_checkpointing=False), net, every)]
    assert counts[0] > counts[1] > counts[2]
    with pytest.raises(ValueError, match="selective_depth"):
        DynTransNet(**four, selective_depth=0)


def _copy_slices_nodes(output: torch.Tensor) -> int:
    """Autograd nodes of ``output``'s graph that copy a view's base back (an in-place op on a view)."""
    seen, stack, count = set(), [output.grad_fn], 0
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        count += type(node).__name__ == "CopySlices"
        stack.extend(next_node for next_node, _ in node.next_functions)
    return count


def test_conv_units_keep_the_nonlinearity_in_place_unless_the_norm_returns_a_view():
    """The plan's InstanceNorm is built as GroupNorm per channel, whose output is no view: every LeakyReLU stays in
    place, recomputed or not, and autograd copies nothing back (CopySlices). torch's InstanceNorm (here with running
    statistics, which the plan can ask for) returns a view: where selective checkpointing recomputes its unit, the
    nonlinearity runs out of place, as a write into the view would copy its base in backward."""
    tiny = dict(input_channels=1, num_classes=3, patch_size=(16, 32, 32), features_per_stage=(8, 16, 32),
                strides=((1, 1, 1), (2, 2, 2), (2, 2, 2)), deep_supervision=False, conv_stages=1)
    viewing = ConvUnitSpec(nn.Conv3d, norm_op=nn.InstanceNorm3d,
                           norm_op_kwargs={"eps": 1e-5, "affine": True, "track_running_stats": True})
    x = torch.randn(1, 1, 16, 32, 32)
    # (conv unit, option): (CopySlices nodes, in-place flags of the stem's two units, of the decoder's four RM units)
    expected = [(None, False, 0, [True] * 2, [True] * 4), (None, True, 0, [True] * 2, [True] * 4),
                (viewing, False, 6, [True] * 2, [True] * 4),
                (viewing, "transformer+decoder", 2, [True] * 2, [False] * 4),
                (viewing, True, 0, [False] * 2, [False] * 4)]
    for unit, option, copies, stem, decoder in expected:
        net = DynTransNet(**tiny, selective_checkpointing=option, conv_unit=unit)
        assert _copy_slices_nodes(net(x)) == copies, option
        assert [m.inplace for m in net.encoder.stem.modules() if isinstance(m, nn.LeakyReLU)] == stem, option
        assert [m.inplace for m in net.decoder.refine.modules() if isinstance(m, nn.LeakyReLU)] == decoder, option


def test_skips_and_decoder_maps_are_channels_first_in_memory():
    """The transformer stages compute channels-last; a channels-last view handed on made every later convolution
    run in that memory format, and InstanceNorm and the convolutions' backward copy it back at every level."""
    net = DynTransNet(1, 2, (16, 32, 32), (8, 16, 32), ((1, 1, 1), (2, 2, 2), (2, 2, 2)))
    seen = []
    for module in net.modules():
        if isinstance(module, (nn.Conv3d, nn.ConvTranspose3d)):
            module.register_forward_hook(lambda m, inputs, out: seen.append((inputs[0].is_contiguous(), out.is_contiguous())))
    skips = net.encoder(torch.randn(2, 1, 16, 32, 32))
    assert all(s.is_contiguous() for s in skips)
    net.decoder(skips)
    assert seen and all(a and b for a, b in seen)


@pytest.mark.parametrize("config", ["3d_isotropic_4_stages", "3d_first_stride_1_2_2", "2d_6_stages_anisotropic_pool"])
def test_conv_stages_are_the_unets_stages_and_dmsa_stays(config):
    """``conv_stages=2``: stage 1 is nnU-Net's U-Net stage (a strided conv unit, then the plan's further units), the
    deeper stages keep D-MSA; every parameter trains; shapes as nnU-Net's deep supervision expects."""
    torch.manual_seed(0)
    cfg = CONFIGS[config]
    net = DynTransNet(input_channels=1, num_classes=2, conv_stages=2, **cfg)
    assert [s.kind for s in net.layout][:2] == ["conv", "conv"] and net.layout[2].kind in ("local", "global")
    stage1 = net.encoder.conv_stages[0]
    strides = [tuple(s) for s in cfg["strides"]]
    assert stage1[0][0].stride == strides[1] and stage1[0][0].in_channels == cfg["features_per_stage"][0]
    depths = cfg.get("depths", 2)
    assert len(stage1) == (depths if isinstance(depths, int) else depths[1])
    assert len(net.encoder.stages) == len(cfg["features_per_stage"]) - 2
    assert net.encoder.stages[0].blocks[0].attn.__class__.__name__ == "DynamicBiasAttention"
    outputs = net(torch.randn(2, 1, *cfg["patch_size"]))
    assert [tuple(o.shape[2:]) for o in outputs] == _nnunet_ds_shapes(cfg["patch_size"], cfg["strides"])
    sum((o * torch.randn_like(o)).sum() for o in outputs).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_conv_stages_leave_one_transformer_stage():
    """More conv stages than all but the last build all but the last (the default, 2, meets the planner's two-stage
    plans); fewer than one is an error."""
    cfg = CONFIGS["3d_isotropic_4_stages"]
    kinds = [s.kind for s in DynTransNet(input_channels=1, num_classes=2, conv_stages=4, **cfg).layout]
    assert kinds == ["conv", "conv", "conv", "global"]
    two = CONFIGS["3d_two_stages"]
    assert [s.kind for s in DynTransNet(input_channels=1, num_classes=2, **two).layout] == ["conv", "global"]
    with pytest.raises(ValueError, match="conv_stages=0: give 1 .* to 3"):
        DynTransNet(input_channels=1, num_classes=2, conv_stages=0, **cfg)


@pytest.mark.parametrize("stride", [(2, 2, 2), (1, 2, 2)])
def test_a_token_sees_its_patch_or_with_overlapping_patches_its_neighbours_too(stride):
    """``patch_embedding``: which input voxels one token of a transformer stage's projection depends on. ``"linear"``
    (the paper's ``E = X' W_e + b_e``): its own patch of ``stride`` voxels; ``"overlapping"``: that patch and the
    ``stride - 1`` voxels before it, which the previous token's patch holds (a 3-voxel window at stride 2, 1 at
    stride 1), on the same token grid."""
    from nnunet_dyntransnet.network.transformer import StridedPatchProjection

    spatial, token = (8, 8, 8), (1, 2, 1)
    for embedding in ("linear", "overlapping"):
        torch.manual_seed(0)
        proj = StridedPatchProjection(nn.Conv3d, 2, 4, stride, embedding)
        x = torch.randn(1, 2, *spatial, requires_grad=True)
        out = proj(x)
        assert tuple(out.shape[2:]) == tuple(n // s for n, s in zip(spatial, stride))
        out[(0, 0, *token)].backward()
        seen = x.grad[0].abs().sum(0).nonzero()
        widen = (lambda s: s - 1) if embedding == "overlapping" else (lambda s: 0)
        lo = [t * s - widen(s) for t, s in zip(token, stride)]
        hi = [t * s + s - 1 for t, s in zip(token, stride)]
        assert seen.min(0).values.tolist() == lo and seen.max(0).values.tolist() == hi, embedding
        assert len(seen) == np.prod([h - l + 1 for l, h in zip(lo, hi)]), embedding
    with pytest.raises(ValueError, match="patch_embedding='conv'"):
        DynTransNet(1, 3, (16, 32, 32), (8, 32, 64), ((1, 1, 1), (2, 2, 2), (2, 2, 2)), patch_embedding="conv")


def test_linear_init_sets_how_the_transformer_linears_start_and_nothing_else():
    """``linear_init="vit"`` (the default): every linear layer a truncated normal of std 0.02 with zero biases;
    ``"fan_in"``: torch's uniform with bound 1 / sqrt(fan_in); the convolutions get the same He init either way."""
    args = (1, 3, (16, 32, 32), (8, 32, 64), ((1, 1, 1), (2, 2, 2), (2, 2, 2)))
    nets = {}
    for init in ("vit", "fan_in"):
        torch.manual_seed(0)
        nets[init] = DynTransNet(*args, conv_stages=1, linear_init=init)
    linears = {init: [m for m in net.modules() if isinstance(m, nn.Linear)] for init, net in nets.items()}
    assert len(linears["vit"]) >= 5  # qkv, W_d, the output projection and the MLP's two layers, per block
    for layer in linears["vit"]:
        assert abs(layer.weight.std().item() - 0.02) < 0.005
        assert torch.count_nonzero(layer.bias) == 0
    for layer in linears["fan_in"]:
        bound = layer.in_features ** -0.5
        assert layer.weight.abs().max() <= bound and layer.weight.std().item() > 0.8 * bound / 3 ** 0.5
        assert layer.bias.abs().max() <= bound and torch.count_nonzero(layer.bias) > 0
    convs = {init: [m.weight for m in net.modules() if isinstance(m, nn.modules.conv._ConvNd)]
             for init, net in nets.items()}
    assert all(torch.equal(a, b) for a, b in zip(convs["vit"], convs["fan_in"])), "He init of the convolutions"
    with pytest.raises(ValueError, match="linear_init='he'"):
        DynTransNet(*args, linear_init="he")
