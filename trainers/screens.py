"""Variants that the screens of ``docs/comparison/screens`` train: one change each against the main trainer.

Every variant trains without mirroring, as the comparison's four networks do (``no_mirroring.py``), and keeps
the rest of its parent: a screen row differs from the default row in the one thing its name says.

- ``_AdamW``: nnU-Net's transformer recipe (AdamW 3e-4 with warm-up), the default recipe until 2026-12.
- ``_SGD``: nnU-Net's own recipe (SGD, lr 1e-2, Nesterov momentum 0.99, polynomial decay, no warm-up), the recipe
  screen's SGD row; since 2026-12 the main trainer's recipe, so the same training as ``nnUNetTrainerDynTransNet``.
- ``_Conv2``: the two highest-resolution stages convolutional (``conv_stages=2``: the stem and stage 1 are nnU-Net's
  U-Net stages), D-MSA from stage 2 on; with the main trainer's recipe (nnU-Net's SGD recipe, also in the screens'
  training logs: learning rate 0.01 from the first epoch, no warm-up). The conv-stage screen's row by its name then;
  since 2026-12-06 the main trainer's network, so the same training as ``nnUNetTrainerDynTransNet_NoMirroring``.
- ``_Depth2``: the plan's blocks in every transformer stage (``transformer_depth=None``: the plan's
  ``n_conv_per_stage``, 2 in nnU-Net's plans) instead of one; the blocks-per-stage screen.
- ``_Adam1e4``: the paper's optimizer and learning rate (Table 1: Adam, lr 1e-4, no weight decay) in place of SGD;
  the rest is the main trainer's (deep-supervised Dice + CE, polynomial decay, nnU-Net's 50-step epochs), so the
  recipe screen's third row changes the optimizer alone (``nnUNetTrainerDynTransNet_Paper`` changes loss, heads and
  epochs too).
- ``_Baseline``: the paper's Table 3 baseline (plain MSA, concatenation, no RM: ``ablations.py``) with the main
  trainer's recipe and defaults otherwise; the ablation screen's row against the full model.
- ``_DMSA_RM``: the full model without FM-M (concatenation and the 1x1 fusion instead, Table 2's first row); the
  ablation screen's FM-M row. ``_FMM_RM`` (plain MSA instead of D-MSA) and ``_DMSA_FMM`` (RM without its residual)
  are its D-MSA and RM rows.
- ``_RMPost``: RM's nonlinearity once more after its residual sum (``rm_post_activation=True``,
  :class:`~nnunet_dyntransnet.network.decoder_blocks.ResidualRefine`); the RM screen's first mended row.
- ``_RMDecoder``: RM's residual adds back the upsampled decoder map instead of FM-M's output
  (``rm_shortcut="decoder"``), so that the skip reaches the head only through RM's convolutions; the second.
- ``_FanIn``: the transformer blocks' linear layers start from torch's fan-in scaled init instead of ViT's std 0.02
  (``linear_init="fan_in"``): under nnU-Net's SGD the trained models' query and key weights had not left ViT's init,
  and their attention was nearly uniform; the init screen's row.
- ``_PerPart``: an optimizer per part (``optimizer_per_part.py``): nnU-Net's SGD for the convolutions, the
  transformer recipe's AdamW for the transformer stages, the main trainer's network and schedule otherwise; the
  optimizer screen's row (under SGD alone the attention did not train; under AdamW alone the convolutions lost).
  ``_PerPart_MSA``: the same with plain MSA instead of D-MSA (the paper's Table 3 row "FM-M + RM"): the D-MSA
  ablation again, with attention that trains.
- ``_Overlap``: every transformer stage embeds its input in overlapping patches (``patch_embedding="overlapping"``:
  kernel 3 at stride 2 instead of 2, :class:`~nnunet_dyntransnet.network.transformer.StridedPatchProjection`), so
  each token also sees the voxel before its patch on each axis; the patch-embedding screen's row.
- ``_Dec1``: one conv unit in RM at every decoder level instead of the plan's ``n_conv_per_stage_decoder`` (2), so
  ``F = X + LReLU(IN(Conv(X)))``: a cheaper decoder, the decoder-units screen's row.
- ``_Window``: attention within 4x4x4-token windows in every transformer stage of more than 512 tokens
  (``max_global_tokens=512``): on the phantom's plan stage 2 (8x16x16 tokens) then attends locally, as the highest-
  resolution transformer stage of nnU-Net's LiTS plan does (32x32x32 tokens) under the default's 4096, where the
  phantom's attends globally everywhere; the window screen's row.
- ``_Warmup``: nnU-Net's SGD recipe with its linear warm-up of the whole network over the first tenth of the epochs
  (``nnUNetTrainerDynTransNet_Warmup``, nnU-Net's ``nnUNetTrainer_warmup``) instead of the full rate from the first
  step; the warm-up screen's row.
- ``_Heads16``: 16 channels per attention head instead of 32 (``head_dim=16``): twice the heads in every transformer
  stage (2 / 4 / 4 on the phantom's narrow plan instead of 1 / 2 / 2; nnU-Net's LiTS plan has 4 / 8 / 10 at 32); the
  heads screen's row.
- ``_LR2e2``: nnU-Net's SGD recipe at twice its learning rate (2e-2 instead of 1e-2, the same polynomial decay,
  momentum and weight decay): whether a short budget (the screens' 31 epochs) wants larger steps, where under 1e-2
  the attention's query and key weights barely leave their init; the learning-rate screen's row.
- ``_NoDS``: no deep supervision (nnU-Net's ``nnUNetTrainerNoDeepSupervision`` idea): the loss on the full-resolution
  head alone, the lower decoder levels' heads unused; the deep-supervision screen's row.
"""
from __future__ import annotations

import torch
from nnunetv2.training.nnUNetTrainer.variants.optimizer.nnUNetTrainerAdam import nnUNetTrainerVanillaAdam

from nnunet_dyntransnet.trainers.ablations import (nnUNetTrainerDynTransNet_Baseline, nnUNetTrainerDynTransNet_DMSA_FMM,
                                                    nnUNetTrainerDynTransNet_DMSA_RM, nnUNetTrainerDynTransNet_FMM_RM)
from nnunet_dyntransnet.trainers.budget import WallClockBudget
from nnunet_dyntransnet.trainers.dyntransnet import (BuildsDynTransNet, nnUNetTrainerDynTransNet,
                                                      nnUNetTrainerDynTransNet_AdamW, nnUNetTrainerDynTransNet_PerPart,
                                                      nnUNetTrainerDynTransNet_Warmup)
from nnunet_dyntransnet.trainers.no_mirroring import NoMirroring
from nnunet_dyntransnet.trainers.paper import PAPER_LR

__all__ = ["nnUNetTrainerDynTransNet_AdamW_NoMirroring", "nnUNetTrainerDynTransNet_SGD",
           "nnUNetTrainerDynTransNet_SGD_NoMirroring", "nnUNetTrainerDynTransNet_Conv2_NoMirroring",
           "nnUNetTrainerDynTransNet_Depth2_NoMirroring", "nnUNetTrainerDynTransNet_Baseline_NoMirroring",
           "nnUNetTrainerDynTransNet_DMSA_RM_NoMirroring", "nnUNetTrainerDynTransNet_FMM_RM_NoMirroring",
           "nnUNetTrainerDynTransNet_DMSA_FMM_NoMirroring", "nnUNetTrainerDynTransNet_Adam1e4_NoMirroring",
           "nnUNetTrainerDynTransNet_RMPost_NoMirroring", "nnUNetTrainerDynTransNet_RMDecoder_NoMirroring",
           "nnUNetTrainerDynTransNet_FanIn_NoMirroring", "nnUNetTrainerDynTransNet_PerPart_NoMirroring",
           "nnUNetTrainerDynTransNet_PerPart_MSA_NoMirroring", "nnUNetTrainerDynTransNet_NoDS_NoMirroring",
           "nnUNetTrainerDynTransNet_Overlap_NoMirroring", "nnUNetTrainerDynTransNet_Dec1_NoMirroring",
           "nnUNetTrainerDynTransNet_Window_NoMirroring", "nnUNetTrainerDynTransNet_Warmup_NoMirroring",
           "nnUNetTrainerDynTransNet_Heads16_NoMirroring", "nnUNetTrainerDynTransNet_LR2e2_NoMirroring"]


class nnUNetTrainerDynTransNet_AdamW_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet_AdamW):
    """The recipe screen's AdamW row: DynTransNet, the transformer recipe, no mirroring."""


class nnUNetTrainerDynTransNet_SGD(nnUNetTrainerDynTransNet):
    """The recipe screen's SGD row by its name then; the main trainer's recipe since 2026-12."""


class nnUNetTrainerDynTransNet_SGD_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet_SGD):
    """The recipe screen's SGD row: DynTransNet, nnU-Net's SGD recipe, no mirroring."""


class nnUNetTrainerDynTransNet_Conv2_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet):
    """The conv-stage screen's row: DynTransNet with ``conv_stages=2`` (the default since 2026-12-06), the main
    trainer's recipe, no mirroring."""

    network_options = dict(conv_stages=2)


class nnUNetTrainerDynTransNet_Depth2_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet):
    """The blocks-per-stage screen's row: the plan's blocks per transformer stage (2 in nnU-Net's plans, as its
    U-Net's conv units per stage) instead of one; the main trainer's recipe, no mirroring."""

    network_options = dict(transformer_depth=None)


class nnUNetTrainerDynTransNet_Baseline_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet_Baseline):
    """The ablation screen's row: the paper's baseline (MSA, concatenation, no RM), no mirroring."""


class nnUNetTrainerDynTransNet_DMSA_RM_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet_DMSA_RM):
    """The ablation screen's FM-M row: D-MSA and RM, the skip fused by concatenation (no FM-M), no mirroring."""


class nnUNetTrainerDynTransNet_FMM_RM_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet_FMM_RM):
    """The ablation screen's D-MSA row: plain MSA, FM-M and RM, no mirroring."""


class nnUNetTrainerDynTransNet_DMSA_FMM_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet_DMSA_FMM):
    """The ablation screen's RM row: D-MSA and FM-M, RM without its residual connection, no mirroring."""


class nnUNetTrainerDynTransNet_RMPost_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet):
    """The RM screen's mended row: the main trainer's network with RM's nonlinearity after its residual sum, no
    mirroring."""

    network_options = dict(rm_post_activation=True)


class nnUNetTrainerDynTransNet_RMDecoder_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet):
    """The RM screen's second mended row: the main trainer's network with RM's residual adding back the upsampled
    decoder map, no mirroring."""

    network_options = dict(rm_shortcut="decoder")


class nnUNetTrainerDynTransNet_Adam1e4_NoMirroring(NoMirroring, BuildsDynTransNet, WallClockBudget,
                                                   nnUNetTrainerVanillaAdam):
    """The recipe screen's paper row: the paper's Adam at lr 1e-4 without weight decay (nnU-Net's
    ``nnUNetTrainerVanillaAdam``, polynomial decay), the main trainer's network, loss and epochs, no mirroring."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.initial_lr = PAPER_LR
        self.weight_decay = 0.0  # the paper names none; nnUNetTrainerVanillaAdam passes nnU-Net's 3e-5


class nnUNetTrainerDynTransNet_FanIn_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet):
    """The init screen's row: the main trainer's network with the transformer blocks' linear layers started from
    torch's fan-in scaled init, no mirroring."""

    network_options = dict(linear_init="fan_in")


class nnUNetTrainerDynTransNet_PerPart_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet_PerPart):
    """The optimizer screen's row: the main trainer's network, SGD for the convolutions and AdamW for the
    transformer stages, no mirroring."""


class nnUNetTrainerDynTransNet_PerPart_MSA_NoMirroring(nnUNetTrainerDynTransNet_PerPart_NoMirroring):
    """The D-MSA ablation under the optimizer per part: plain MSA (no input-dependent bias), FM-M and RM, no
    mirroring."""

    network_options = dict(nnUNetTrainerDynTransNet_FMM_RM.network_options)


class nnUNetTrainerDynTransNet_NoDS_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet):
    """The deep-supervision screen's row: the main trainer without deep supervision, no mirroring."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.enable_deep_supervision = False  # read when initialize builds the network and the loss


class nnUNetTrainerDynTransNet_Overlap_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet):
    """The patch-embedding screen's row: the main trainer's network with overlapping patch embeddings in its
    transformer stages, no mirroring."""

    network_options = dict(patch_embedding="overlapping")


class nnUNetTrainerDynTransNet_Dec1_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet):
    """The decoder-units screen's row: the main trainer's network with one conv unit in each level's RM, no
    mirroring."""

    network_options = dict(decoder_units=1)


class nnUNetTrainerDynTransNet_Window_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet):
    """The window screen's row: the main trainer's network with windowed attention in every transformer stage of
    more than 512 tokens, no mirroring."""

    network_options = dict(max_global_tokens=512)


class nnUNetTrainerDynTransNet_Warmup_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet_Warmup):
    """The warm-up screen's row: the main trainer's network and SGD with nnU-Net's linear warm-up, no mirroring."""


class nnUNetTrainerDynTransNet_Heads16_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet):
    """The heads screen's row: the main trainer's network with 16 channels per attention head, no mirroring."""

    network_options = dict(head_dim=16)


class nnUNetTrainerDynTransNet_LR2e2_NoMirroring(NoMirroring, nnUNetTrainerDynTransNet):
    """The learning-rate screen's row: the main trainer with SGD starting at 2e-2 instead of nnU-Net's 1e-2, no
    mirroring."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.initial_lr = 2e-2  # read by configure_optimizers (SGD) and the polynomial decay it returns
