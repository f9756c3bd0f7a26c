"""Each paper-row trainer builds the network its row describes, from its one statement of options."""
from types import SimpleNamespace

import pytest
from torch import nn

from nnunet_dyntransnet.network.decoder_blocks import ConcatFusion, FeatureMix, ResidualRefine, WeightedSumFusion
from nnunet_dyntransnet.trainers import (ABLATION_TRAINERS, nnUNetTrainerDynTransNet, nnUNetTrainerDynTransNet_Baseline,
                                         nnUNetTrainerDynTransNet_Paper, nnUNetTrainerDynTransNet_RM, ablations)

PLAN = SimpleNamespace(patch_size=[16, 32, 32], network_arch_init_kwargs=dict(
    features_per_stage=[4, 8, 16], strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2]], kernel_sizes=[[3, 3, 3]] * 3,
    n_conv_per_stage=[1, 1, 1]))
# the comparison's narrow plan of the phantom (32x64x64 patch, widths 8-64, strides 1-2-2-2-(1,2,2))
PHANTOM_PLAN = SimpleNamespace(patch_size=[32, 64, 64], network_arch_init_kwargs=dict(
    features_per_stage=[8, 16, 32, 64, 64], strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]],
    kernel_sizes=[[3, 3, 3]] * 5, n_conv_per_stage=[2] * 5))
FUSION = {"concat": ConcatFusion, "feature_mix": FeatureMix, "weighted_sum": WeightedSumFusion}
# Table 3's rows as (D-MSA, FM-M, RM), and Table 2's fusion rows
EXPECTED = {
    "Baseline": (False, "concat", False), "DMSA": (True, "concat", False), "FMM": (False, "feature_mix", False),
    "RM": (False, "concat", True), "DMSA_FMM": (True, "feature_mix", False), "DMSA_RM": (True, "concat", True),
    "FMM_RM": (False, "feature_mix", True), "WeightedSum": (True, "weighted_sum", True),
}


def _describe(net):
    attn = [m for m in net.modules() if hasattr(m, "bias_proj")]
    fusions = {type(f) for f in net.decoder.fuse}
    refine = net.decoder.refine
    assert len(fusions) == 1 and all(type(r) is ResidualRefine for r in refine)
    residual = {r.residual for r in refine}
    assert len(residual) == 1
    return all(a.bias_proj is not None for a in attn), fusions.pop(), residual.pop()


@pytest.mark.parametrize("suffix", sorted(EXPECTED))
def test_ablation_trainer_builds_its_row(suffix):
    cls = getattr(ablations, f"nnUNetTrainerDynTransNet_{suffix}")
    assert issubclass(cls, nnUNetTrainerDynTransNet)
    dmsa, fusion, rm = EXPECTED[suffix]
    net = cls.build_network_architecture(None, PLAN, 1, 3, True)
    assert _describe(net) == (dmsa, FUSION[fusion], rm)


def test_full_and_paper_trainers_build_the_full_model():
    for cls in (nnUNetTrainerDynTransNet, nnUNetTrainerDynTransNet_Paper):
        assert _describe(cls.build_network_architecture(None, PLAN, 1, 3, True)) == (True, FeatureMix, True)


def test_every_table_row_has_a_trainer_with_its_options_stated_once():
    assert sorted(c.__name__.split("_", 1)[1] for c in ABLATION_TRAINERS) == sorted(EXPECTED)
    for cls in ABLATION_TRAINERS:
        assert "network_options" in vars(cls), f"{cls.__name__} states its own options"
    assert isinstance(nnUNetTrainerDynTransNet_Paper.build_network_architecture(None, PLAN, 1, 2, False), nn.Module)


def test_no_rm_keeps_the_decoder_convolutions():
    """'No RM' drops only the residual connection: the same parameters as with RM."""
    with_rm = nnUNetTrainerDynTransNet_RM.build_network_architecture(None, PLAN, 1, 3, True)
    without = nnUNetTrainerDynTransNet_Baseline.build_network_architecture(None, PLAN, 1, 3, True)
    count = lambda net: sum(p.numel() for p in net.decoder.refine.parameters())  # noqa: E731
    assert count(with_rm) == count(without) > 0


def _built_as_recorded(cls, plan=PLAN):
    """The network ``cls`` trains on ``plan``: built from the options it records in the plans before nnU-Net builds
    the network from them (a plan without the record builds 0.1.0's network, for result folders trained before)."""
    from nnunet_dyntransnet.network import network_defaults
    from nnunet_dyntransnet.trainers.dyntransnet import ARCHITECTURE_OPTIONS, OPTIONS_KEY

    record = {**{k: network_defaults()[k] for k in ARCHITECTURE_OPTIONS}, **cls.network_options_for(plan)}
    planned = SimpleNamespace(**vars(plan), configuration={OPTIONS_KEY: record})
    return cls.build_network_architecture(None, planned, 1, 3, True)


def test_the_init_screens_trainer_starts_its_linears_from_torchs_fan_in_init():
    """The one change of ``_FanIn`` (trainers/screens.py) against the main trainer: its linear layers start from
    torch's fan-in init (``linear_init="fan_in"``), the main trainer's from ViT's std 0.02."""
    from nnunet_dyntransnet.trainers.screens import nnUNetTrainerDynTransNet_FanIn_NoMirroring

    def qkv_std(cls):
        return [m.qkv.weight.std().item() for m in _built_as_recorded(cls).modules() if hasattr(m, "bias_proj")]

    assert all(abs(s - 0.02) < 0.005 for s in qkv_std(nnUNetTrainerDynTransNet))
    assert all(s > 0.05 for s in qkv_std(nnUNetTrainerDynTransNet_FanIn_NoMirroring))


def test_the_patch_embedding_screens_trainer_embeds_in_overlapping_patches():
    """The one change of ``_Overlap`` (trainers/screens.py) against the main trainer: every transformer stage's
    projection has kernel 3 with padding 1 at stride 2; the main trainer's has kernel = stride, no padding."""
    from nnunet_dyntransnet.network.transformer import StridedPatchProjection
    from nnunet_dyntransnet.trainers.screens import nnUNetTrainerDynTransNet_Overlap_NoMirroring

    def projections(cls):
        return [(m.proj.kernel_size, m.proj.padding) for m in _built_as_recorded(cls).modules()
                if isinstance(m, StridedPatchProjection)]

    # PLAN's three stages: the stem and stage 1 convolutional (conv_stages=2), stage 2 a transformer stage
    assert projections(nnUNetTrainerDynTransNet) == [((2, 2, 2), (0, 0, 0))]
    assert projections(nnUNetTrainerDynTransNet_Overlap_NoMirroring) == [((3, 3, 3), (1, 1, 1))]
    assert _describe(_built_as_recorded(nnUNetTrainerDynTransNet_Overlap_NoMirroring)) == (True, FeatureMix, True)


def test_the_decoder_units_screens_trainer_refines_with_one_conv_unit():
    """The one change of ``_Dec1`` (trainers/screens.py): one conv unit in each level's RM, the main trainer's two
    (PLAN's ``n_conv_per_stage_decoder`` is absent: nnU-Net's 2); the residual stays."""
    from nnunet_dyntransnet.trainers.screens import nnUNetTrainerDynTransNet_Dec1_NoMirroring

    def units(cls):
        return [len(r.body) for r in _built_as_recorded(cls).decoder.refine]

    assert units(nnUNetTrainerDynTransNet) == [2, 2]
    assert units(nnUNetTrainerDynTransNet_Dec1_NoMirroring) == [1, 1]
    assert _describe(_built_as_recorded(nnUNetTrainerDynTransNet_Dec1_NoMirroring)) == (True, FeatureMix, True)


def test_the_window_screens_trainer_attends_locally_where_the_phantoms_plan_has_more_than_512_tokens():
    """The one change of ``_Window`` (trainers/screens.py): on the phantom's plan (32x64x64 patch, strides 1-2-2-2-
    (1,2,2)) stage 2's 8x16x16 tokens attend within 4x4x4 windows, the lower stages globally; the main trainer's
    attend globally in every stage."""
    from nnunet_dyntransnet.trainers.screens import nnUNetTrainerDynTransNet_Window_NoMirroring

    def attention(cls):
        return [(s.kind, s.window) for s in _built_as_recorded(cls, PHANTOM_PLAN).layout[2:]]

    assert attention(nnUNetTrainerDynTransNet) == [("global", (8, 16, 16)), ("global", (4, 8, 8)), ("global", (4, 4, 4))]
    assert attention(nnUNetTrainerDynTransNet_Window_NoMirroring) == [
        ("local", (4, 4, 4)), ("global", (4, 8, 8)), ("global", (4, 4, 4))]


def test_the_per_part_dmsa_row_differs_from_the_per_part_row_only_in_dmsas_bias():
    """``_PerPart_MSA`` (trainers/screens.py): the optimizer per part's trainer with Table 3's "FM-M + RM" network."""
    from nnunet_dyntransnet.trainers.screens import (nnUNetTrainerDynTransNet_PerPart_MSA_NoMirroring,
                                                     nnUNetTrainerDynTransNet_PerPart_NoMirroring)

    assert issubclass(nnUNetTrainerDynTransNet_PerPart_MSA_NoMirroring, nnUNetTrainerDynTransNet_PerPart_NoMirroring)
    assert _describe(nnUNetTrainerDynTransNet_PerPart_MSA_NoMirroring.build_network_architecture(
        None, PLAN, 1, 3, True)) == (False, FeatureMix, True)
    assert _describe(nnUNetTrainerDynTransNet_PerPart_NoMirroring.build_network_architecture(
        None, PLAN, 1, 3, True)) == (True, FeatureMix, True)


def test_the_heads_screens_trainer_has_twice_the_heads_in_every_transformer_stage():
    """The one change of ``_Heads16`` (trainers/screens.py): 16 channels per head instead of 32, so on the phantom's
    narrow plan (32 / 64 / 64 channels in the transformer stages) 2 / 4 / 4 heads instead of 1 / 2 / 2."""
    from nnunet_dyntransnet.trainers.screens import nnUNetTrainerDynTransNet_Heads16_NoMirroring

    def heads(cls):
        net = _built_as_recorded(cls, PHANTOM_PLAN)
        in_blocks = [m.num_heads for m in net.modules() if hasattr(m, "bias_proj")]
        return [s.heads for s in net.layout[2:]], in_blocks

    assert heads(nnUNetTrainerDynTransNet) == ([1, 2, 2], [1, 2, 2])
    assert heads(nnUNetTrainerDynTransNet_Heads16_NoMirroring) == ([2, 4, 4], [2, 4, 4])
    assert _describe(_built_as_recorded(nnUNetTrainerDynTransNet_Heads16_NoMirroring, PHANTOM_PLAN)) == (True, FeatureMix, True)
