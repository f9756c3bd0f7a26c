"""compute_conv_feature_map_size counts what the network keeps for backward, in nnU-Net's units.

The reference is measured: every tensor autograd saves during a forward pass (through
``saved_tensors_hooks``), parameters excluded, each storage once.
"""
import pytest
import torch

from nnunet_dyntransnet.benchmark import default_plan
from nnunet_dyntransnet.network.units import PLAIN_SAVED_PER_COUNTED
from nnunet_dyntransnet.plans.dyntransnet_planner import plan_feature_map_size
from nnunet_dyntransnet.network import DynTransNet


def saved_elements(model: torch.nn.Module, x: torch.Tensor) -> int:
    params = {p.data_ptr() for p in model.parameters()}
    storages = {}

    def pack(t):
        if t.data_ptr() not in params:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes() // t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(storages.values())


def retained_elements(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Elements of every tensor a forward pass creates that is still alive after it (parameters excluded), each
    storage once: what autograd keeps for backward, including what selective checkpointing caches outside
    ``saved_tensors_hooks``' view, plus the outputs."""
    import gc
    import weakref

    from torch.utils._python_dispatch import TorchDispatchMode

    class Created(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.refs = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            self.refs += [weakref.ref(t) for t in (out if isinstance(out, (tuple, list)) else [out])
                          if isinstance(t, torch.Tensor)]
            return out

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    created = Created()
    with created:
        outputs = model(x)
    gc.collect()
    alive = {}
    for ref in created.refs:
        t = ref()
        if t is not None and t.untyped_storage().data_ptr() not in params:
            alive[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes() // t.element_size()
    del outputs
    return sum(alive.values())


@pytest.mark.parametrize("patch", [[16, 32, 32], [32, 48, 48]])
def test_nnunet_unit_is_measured_for_its_own_unet(patch):
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    plan = default_plan(patch)
    net = get_network_from_plans(plan.network_arch_class_name, plan.network_arch_init_kwargs,
                                 plan.network_arch_init_kwargs_req_import, 1, 3, deep_supervision=True)
    ratio = saved_elements(net, torch.randn(1, 1, *patch)) / net.compute_conv_feature_map_size(patch)
    assert ratio == pytest.approx(PLAIN_SAVED_PER_COUNTED, rel=0.01)


VARIANTS = [dict(), dict(attention="msa"),
            dict(conv_unit="batchnorm-gelu"),  # a plan's other layers: a nonlinearity that keeps its input
            dict(fusion="concat", residual_refine=False), dict(fusion="weighted_sum"),
            dict(depths=1, mlp_ratio=2.0, head_dim=64), dict(activation_checkpointing=True),
            dict(activation_checkpointing=True, fusion="concat", residual_refine=False), dict(conv_stages=1),
            dict(rm_post_activation=True), dict(rm_shortcut="decoder")]


@pytest.mark.parametrize("patch,spacing", [([16, 32, 32], None), ([32, 32, 32], None), ([8, 32, 48], [4.0, 1.0, 1.0]),
                                           ([64, 64], None)])
@pytest.mark.parametrize("options", VARIANTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "full")
def test_estimate_matches_saved_tensors(patch, spacing, options):
    torch.manual_seed(0)
    if options.get("conv_unit") == "batchnorm-gelu":
        from nnunet_dyntransnet.network.conv_unit import ConvUnitSpec

        conv_op = torch.nn.Conv3d if len(patch) == 3 else torch.nn.Conv2d
        norm = torch.nn.BatchNorm3d if len(patch) == 3 else torch.nn.BatchNorm2d
        options = dict(conv_unit=ConvUnitSpec(conv_op, norm_op=norm, norm_op_kwargs={}, nonlin=torch.nn.GELU,
                                              nonlin_kwargs={}))
    # selective checkpointing (on by default) caches outside saved_tensors_hooks' view: measured below
    net = DynTransNet.from_plan(default_plan(patch, spacing), 1, 3, True, **{"selective_checkpointing": False, **options})
    measured = saved_elements(net, torch.randn(1, 1, *patch))
    estimated = net.compute_conv_feature_map_size(patch) * PLAIN_SAVED_PER_COUNTED
    assert estimated == pytest.approx(measured, rel=0.05)


@pytest.mark.parametrize("options", [dict(selective_checkpointing=False), dict(selective_checkpointing=True),
                                     dict(conv_stages=1), dict(conv_stages=1, selective_checkpointing=True),
                                     dict(selective_checkpointing=True,
                                     attention="msa", mlp_ratio=2.0), dict(selective_checkpointing=True,
                                     activation_checkpointing=True), dict()],
                         ids=["plain", "selective", "conv1", "conv1-selective", "selective-msa-mlp2", "selective+full",
                              "default"])
def test_estimate_matches_retained_memory(options):
    """Selective checkpointing caches outside saved_tensors_hooks' view: the count against what stays alive."""
    torch.manual_seed(0)
    patch = [16, 32, 32]
    net = DynTransNet.from_plan(default_plan(patch), 1, 3, True, **options)
    estimated = net.compute_conv_feature_map_size(patch) * PLAIN_SAVED_PER_COUNTED
    assert estimated == pytest.approx(retained_elements(net, torch.randn(1, 1, *patch)), rel=0.05)


def test_estimate_scales_with_input_and_counts_every_part():
    net = DynTransNet.from_plan(default_plan([32, 64, 64]), 1, 3, True)
    small, large = net.compute_conv_feature_map_size([32, 64, 64]), net.compute_conv_feature_map_size([64, 128, 128])
    assert large == pytest.approx(8 * small, rel=0.01)
    parts = net.saved_activation_elements([32, 64, 64])
    assert set(parts) == {"input", "stem", "transformer", "decoder"} and all(v > 0 for v in parts.values())
    with pytest.raises(ValueError, match="axes"):
        net.compute_conv_feature_map_size([64, 64])


@pytest.mark.parametrize("option,patch,measure,fraction", [
    # keeps under two thirds: the stem and the conv stage keep theirs, the first transformer stage and the
    # full-resolution decoder level only their inputs
    ("activation_checkpointing", [32, 64, 64], saved_elements, 0.65),
    ("selective_checkpointing", [16, 32, 32], retained_elements, 0.9),  # its cache is outside autograd's hooks
])
def test_checkpointing_keeps_less_and_changes_nothing_else(option, patch, measure, fraction):
    torch.manual_seed(0)
    plain = DynTransNet.from_plan(default_plan(patch), 1, 3, True, selective_checkpointing=False)
    ckpt = DynTransNet.from_plan(default_plan(patch), 1, 3, True, **{"selective_checkpointing": False, option: True})
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(1, 1, *patch)
    assert measure(ckpt, x) < fraction * measure(plain, x)
    out_a, out_b = plain(x), ckpt(x)
    assert all(torch.equal(a, b) for a, b in zip(out_a, out_b))
    sum(o.square().mean() for o in out_a).backward()
    sum(o.square().mean() for o in out_b).backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-5, atol=1e-7), name


def test_planner_estimate_is_the_built_networks():
    """The planner builds the network on the meta device: the same count as the trained network's."""
    plan = default_plan([32, 64, 64])
    options = dict(attention="msa", mlp_ratio=2.0, selective_checkpointing=False)
    net = DynTransNet.from_plan(plan, 1, 3, True, **options)
    for patch in ([32, 64, 64], [16, 64, 64]):
        assert plan_feature_map_size(patch, 1, 3, plan.network_arch_init_kwargs, options) == \
            DynTransNet.from_plan(plan, 1, 3, True, patch_size=patch, **options).compute_conv_feature_map_size(patch)
    # FM-M alone is recomputed by default: backward holds its full-resolution intermediates again, nothing more
    fusion_only = net.recomputed_elements([32, 64, 64])
    assert fusion_only == net.decoder.fuse[-1].recomputed_elements(32 * 64 * 64) > 0
    net.set_activation_checkpointing(True)
    assert net.recomputed_elements([32, 64, 64]) > fusion_only


@pytest.mark.parametrize("options,runs", [
    (dict(selective_checkpointing=False), 2),  # FM-M recomputes itself
    (dict(selective_checkpointing="decoder"), 2),  # the level's recomputation runs FM-M, without its own
    (dict(selective_checkpointing=False, activation_checkpointing=True), 2),
])
def test_a_recomputed_decoder_level_runs_feature_mix_once_in_backward(options, runs):
    """FM-M's own recomputation nested in its level's ran the full-resolution FM-M three times a step."""
    net = DynTransNet.from_plan(default_plan([16, 32, 32]), 1, 3, True, **options)
    calls, fm = [], net.decoder.fuse[-1]
    mix = fm.mix
    fm.mix = lambda *args: calls.append(1) or mix(*args)
    sum(o.mean() for o in net(torch.randn(1, 1, 16, 32, 32))).backward()
    assert len(calls) == runs


@pytest.mark.parametrize("attention,dim,heads", [("dmsa", 64, 2), ("dmsa", 48, 3), ("dmsa", 96, 3), ("dmsa", 32, 1),
                                                 ("msa", 64, 2), ("msa", 32, 1)])
def test_each_attention_counts_what_autograd_saves_for_it_alone(attention, dim, heads):
    """Issue 27: the network-level check (5% of a total of which attention is 13%) let a D-MSA count without its
    padded-head or its bias term pass. Here the attention alone, as a block calls it (windows, rotary positions):
    every attention and head count is counted exactly (the rotary tables, one per window shape and not per token,
    aside), the output projection's input too, which is a view of the kernel's output unless D-MSA cuts it from
    the folded width of several heads."""
    from nnunet_dyntransnet.network.transformer import DynamicTransformerBlock

    torch.manual_seed(0)
    block = DynamicTransformerBlock(dim, heads, (4, 4, 4), mlp_ratio=2.0, attention=attention)
    rotary = block.rotary((4, 4, 4))

    class AttentionAlone(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = block.attn

        def forward(self, x):
            return self.attn(x, rotary)

    windows, tokens = 8, 64
    measured = saved_elements(AttentionAlone(), torch.randn(windows, tokens, dim, requires_grad=True))
    tables = sum(t.numel() for t in rotary)
    counted = block.attn.saved_elements(tokens) * windows
    assert measured - tables == counted


@pytest.mark.parametrize("post_activation", [False, True])
@pytest.mark.parametrize("in_place", [True, False])
def test_rm_counts_what_autograd_saves_for_it_alone(post_activation, in_place):
    """RM alone, with and without its nonlinearity after the sum, in place (nnU-Net's LeakyReLU) or keeping its
    input (GELU): exactly what autograd saves, except the level's output, which the decoder counts (its head and the
    next upsampling keep it) and which an in-place nonlinearity after the sum keeps too, and the norms' statistics,
    which the count leaves out as it does everywhere (a few per channel, none per voxel)."""
    from nnunet_dyntransnet.network.conv_unit import ConvUnitSpec
    from nnunet_dyntransnet.network.decoder_blocks import ResidualRefine

    torch.manual_seed(0)
    spec = ConvUnitSpec(torch.nn.Conv3d) if in_place else ConvUnitSpec(torch.nn.Conv3d, nonlin=torch.nn.GELU,
                                                                       nonlin_kwargs={})
    channels, grid = 8, (4, 6, 6)
    rm = ResidualRefine(spec, channels, (3, 3, 3), post_activation=post_activation)
    voxels = grid[0] * grid[1] * grid[2]
    measured = saved_elements(rm, torch.randn(2, channels, *grid, requires_grad=True)) / 2
    output_kept_here = channels * voxels if post_activation and in_place else 0
    norm_statistics = 2 * channels * len(rm.body)  # a mean and an inverse SD per channel and unit, not per voxel
    assert measured == rm.saved_elements(voxels) + output_kept_here + norm_statistics
