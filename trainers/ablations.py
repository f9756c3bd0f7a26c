"""One trainer per ablation row of the paper (Tables 2 and 3): nnUNetTrainerDynTransNet with other network options.

Every trainer shares nnUNetTrainerDynTransNet's recipe and differs only in ``network_options``,
so the rows compare architectures. "FM-M off" is simple concatenation followed by the 1x1
fusion convolution (Table 2's first row); "RM off" keeps RM's two conv units and drops only
its residual connection (so both have the same parameters; docs/training.md says why).
"""
from __future__ import annotations

from nnunet_dyntransnet.trainers.dyntransnet import nnUNetTrainerDynTransNet

__all__ = ["nnUNetTrainerDynTransNet_Baseline", "nnUNetTrainerDynTransNet_DMSA", "nnUNetTrainerDynTransNet_FMM",
           "nnUNetTrainerDynTransNet_RM", "nnUNetTrainerDynTransNet_DMSA_FMM", "nnUNetTrainerDynTransNet_DMSA_RM",
           "nnUNetTrainerDynTransNet_FMM_RM", "nnUNetTrainerDynTransNet_WeightedSum", "ABLATION_TRAINERS"]


class nnUNetTrainerDynTransNet_Baseline(nnUNetTrainerDynTransNet):
    """Table 3, baseline: plain MSA, concatenation, no RM."""

    network_options = dict(attention="msa", fusion="concat", residual_refine=False)


class nnUNetTrainerDynTransNet_DMSA(nnUNetTrainerDynTransNet):
    """Table 3: D-MSA alone."""

    network_options = dict(attention="dmsa", fusion="concat", residual_refine=False)


class nnUNetTrainerDynTransNet_FMM(nnUNetTrainerDynTransNet):
    """Table 3: FM-M alone."""

    network_options = dict(attention="msa", fusion="feature_mix", residual_refine=False)


class nnUNetTrainerDynTransNet_RM(nnUNetTrainerDynTransNet):
    """Table 3: RM alone."""

    network_options = dict(attention="msa", fusion="concat", residual_refine=True)


class nnUNetTrainerDynTransNet_DMSA_FMM(nnUNetTrainerDynTransNet):
    """Table 3: D-MSA and FM-M."""

    network_options = dict(attention="dmsa", fusion="feature_mix", residual_refine=False)


class nnUNetTrainerDynTransNet_DMSA_RM(nnUNetTrainerDynTransNet):
    """Table 3: D-MSA and RM; also Table 2, "simple concatenation"."""

    network_options = dict(attention="dmsa", fusion="concat", residual_refine=True)


class nnUNetTrainerDynTransNet_FMM_RM(nnUNetTrainerDynTransNet):
    """Table 3: FM-M and RM."""

    network_options = dict(attention="msa", fusion="feature_mix", residual_refine=True)


class nnUNetTrainerDynTransNet_WeightedSum(nnUNetTrainerDynTransNet):
    """Table 2, "weighted sum": the skip fusion as a learned weighted sum."""

    network_options = dict(attention="dmsa", fusion="weighted_sum", residual_refine=True)


# every row of Tables 2 and 3 besides the full model, in the paper's order
ABLATION_TRAINERS = (nnUNetTrainerDynTransNet_Baseline, nnUNetTrainerDynTransNet_DMSA, nnUNetTrainerDynTransNet_FMM,
                     nnUNetTrainerDynTransNet_RM, nnUNetTrainerDynTransNet_DMSA_FMM, nnUNetTrainerDynTransNet_DMSA_RM,
                     nnUNetTrainerDynTransNet_FMM_RM, nnUNetTrainerDynTransNet_WeightedSum)
