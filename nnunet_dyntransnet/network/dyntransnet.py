"""DynTransNet (Zheng et al., Front. Oncol. 2025): D-MSA transformer encoder, FM-M + RM convolutional decoder."""
from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch
from dynamic_network_architectures.building_blocks.helper import convert_dim_to_conv_op
from dynamic_network_architectures.initialization.weight_init import InitWeights_He
from timm.layers import trunc_normal_
from torch import nn

from nnunet_dyntransnet.network.attention import ATTENTIONS
from nnunet_dyntransnet.network.checkpointing import SELECTIVE_PARTS, CheckpointingPolicy
from nnunet_dyntransnet.network.conv_unit import ConvUnitSpec
from nnunet_dyntransnet.network.decoder import DynTransDecoder
from nnunet_dyntransnet.network.encoder import DynTransEncoder
from nnunet_dyntransnet.network.units import in_nnunet_units
from nnunet_dyntransnet.network.stage_layout import (IntOrSeq, StageLayout, format_layout, plan_stage_layout, total_stride,
                                                      voxels_per_stage)

__all__ = ["DynTransNet", "SELECTIVE_PARTS", "network_defaults", "capped_widths", "selective_parts"]



def selective_parts(option: Union[bool, str]) -> tuple:
    """``selective_checkpointing`` as a tuple of :data:`SELECTIVE_PARTS`: True is all, False (or ``""``) none, a
    string names parts joined with ``+``. Raises ValueError naming an unknown part."""
    if isinstance(option, bool) or option is None:
        return SELECTIVE_PARTS if option else ()
    if not isinstance(option, str):
        raise ValueError(f"selective_checkpointing={option!r}: give True, False or parts joined with '+' "
                         f"from {'/'.join(SELECTIVE_PARTS)}")
    named = {p.strip() for p in option.split("+") if p.strip()}
    unknown = sorted(named - set(SELECTIVE_PARTS))
    if unknown:
        raise ValueError(f"selective_checkpointing={option!r}: unknown part(s) {unknown}; the parts are "
                         f"{'+'.join(SELECTIVE_PARTS)}")
    return tuple(p for p in SELECTIVE_PARTS if p in named)


class DynTransNet(nn.Module):
    """U-shaped DynTransNet for 2D or 3D segmentation, configured like nnU-Net's U-Nets.

    Args:
        input_channels: image channels (modalities).
        num_classes: output channels (nnU-Net's segmentation heads); the network returns logits.
        patch_size: planned input size (2 or 3 axes); decides the grids, windows and which
            stages attend globally.
        features_per_stage: channels per stage; stage 0 is the full-resolution conv stem.
        strides: per-stage downsampling (nnU-Net's pooling); ``strides[0]`` must be 1.
        kernel_sizes: conv kernel for every stage (one int), or one kernel per stage (stem and
            decoder RM).
        depths: blocks per stage (stem: conv units; others: transformer blocks).
        transformer_depth: transformer blocks in every transformer stage, whatever ``depths`` says for them
            (None: as ``depths``, i.e. the plan's ``n_conv_per_stage``); the stem keeps ``depths[0]`` conv units.
            Default 1 (docs/network.md, "Defaults, and why", says what the plan's 2 cost).
        head_dim: target channels per attention head.
        mlp_ratio: MLP hidden width / channels (default 2; ViT's 4 costs time and the largest saved tensors).
        window_size: largest local-attention window edge (default 4: 64-token windows in 3D).
        max_global_tokens: stages with at most this many tokens attend globally.
        drop_path_rate: stochastic depth at the last transformer block (linear from 0).
        attention: the transformer blocks' attention, by its name in ``attention.ATTENTIONS``: ``"dmsa"`` (D-MSA)
            or ``"msa"`` (plain multi-head self-attention, the paper's ablation).
        fusion: ``"feature_mix"`` (FM-M), ``"concat"`` or ``"weighted_sum"`` (paper ablations).
        residual_refine: RM's residual connection in the decoder (False: the paper's "no RM" ablation,
            which keeps RM's two conv units, so both variants have the same parameters).
        rm_post_activation: RM's nonlinearity once more after its residual sum (False: the paper's Algorithm 3;
            :class:`~nnunet_dyntransnet.network.decoder_blocks.ResidualRefine` says why it is offered).
        rm_shortcut: what RM's residual adds back: ``"fused"``, FM-M's output (the paper's Algorithm 3), or
            ``"decoder"``, the upsampled decoder map (:class:`~nnunet_dyntransnet.network.decoder.DynTransDecoder`).
        linear_init: how the transformer blocks' linear layers (attention, D-MSA's ``W_d``, MLP) start: ``"vit"``,
            ViT's truncated normal of std 0.02 with zero biases (made for AdamW, whose steps do not scale with the
            gradient), or ``"fan_in"``, torch's default (uniform with bound ``1 / sqrt(fan_in)``, about 6x ViT's at
            32 channels), under which SGD moves the attention logits; convolutions get nnU-Net's He init either way.
        patch_embedding: how each transformer stage embeds its input in tokens (``transformer.PATCH_EMBEDDINGS``):
            ``"linear"``, non-overlapping patches (kernel = stride, the paper's
            ``E = X' W_e + b_e``), or ``"overlapping"``, kernel ``2 * stride - 1`` with padding ``stride - 1``
            (:class:`~nnunet_dyntransnet.network.transformer.StridedPatchProjection`).
        deep_supervision: return logits at every decoder level, full resolution first.
        fused_attn: attention through ``scaled_dot_product_attention`` (else the explicit reference path).
        activation_checkpointing: recompute, in backward, the highest-resolution parts instead of
            keeping their activations: the first transformer stage's blocks and the full-resolution
            decoder level's fusion and RM: less kept for backward, for one more forward pass of those parts
            (``saved_activation_elements`` counts what each part keeps).
        selective_checkpointing: in the stem, every transformer block and every decoder level (True), or in the
            parts named (``"transformer"``, ``"stem+decoder"``; :data:`SELECTIVE_PARTS`), recompute the cheap
            operations in backward and keep only the spatial convolutions', the attention kernel's and the MLP's
            hidden outputs (:mod:`~nnunet_dyntransnet.network.checkpointing`). Where ``activation_checkpointing``
            is on too, the parts it names are recomputed whole. FM-M is recomputed in backward in any case
            (:class:`~nnunet_dyntransnet.network.decoder_blocks.FeatureMix`).
        conv_stages: how many stages, from the highest resolution, are convolutional: the plan's conv units, as
            nnU-Net's U-Net; their selective checkpointing is the stem's. Default 2, the stem and stage 1
            (docs/network.md, "Defaults, and why"; 1, the stem alone, was the default before 2026-12-06). Capped at
            all but the lowest-resolution stage, which stays a transformer stage: a plan of two stages gets 1.
        selective_depth: how many transformer stages and decoder levels, from the highest resolution down, selective
            checkpointing covers (None: all). Default 2: deeper ones hold little memory, and their recomputation cost
            time for each operation all the same (docs/network.md, "Defaults").

    Shapes:
        ``forward(x)``: ``(B, input_channels, *spatial)`` with ``spatial`` divisible by the total
        stride -> ``(B, num_classes, *spatial)``, or a list over decoder levels with deep supervision.

    Example:
        >>> net = DynTransNet(1, 3, (32, 32, 32), (8, 16, 32), ((1, 1, 1), (2, 2, 2), (2, 2, 2)))
        >>> [o.shape[2:] for o in net(torch.randn(1, 1, 32, 32, 32))]
        [torch.Size([32, 32, 32]), torch.Size([16, 16, 16])]
    """

    def __init__(
        self,
        input_channels: int,
        num_classes: int,
        patch_size: Sequence[int],
        features_per_stage: Sequence[int],
        strides: Sequence[IntOrSeq],
        kernel_sizes: Union[IntOrSeq, Sequence[IntOrSeq]] = 3,
        depths: Union[int, Sequence[int]] = 2,
        transformer_depth: Optional[int] = 1,
        head_dim: int = 32,
        mlp_ratio: float = 2.0,
        window_size: IntOrSeq = 4,
        max_global_tokens: int = 4096,
        drop_path_rate: float = 0.0,
        attention: str = "dmsa",
        fusion: str = "feature_mix",
        residual_refine: bool = True,
        deep_supervision: bool = True,
        fused_attn: bool = True,
        activation_checkpointing: bool = False,
        selective_checkpointing: Union[bool, str] = "transformer+decoder",
        selective_depth: Optional[int] = 2,
        conv_unit: Optional[ConvUnitSpec] = None,
        decoder_units: Union[int, Sequence[int]] = 2,
        conv_stages: int = 2,
        rm_post_activation: bool = False,
        rm_shortcut: str = "fused",
        linear_init: str = "vit",
        patch_embedding: str = "linear",
    ) -> None:
        super().__init__()
        if input_channels < 1 or num_classes < 1:
            raise ValueError(f"input_channels ({input_channels}) and num_classes ({num_classes}) must be >= 1")
        if selective_depth is not None and selective_depth < 1:
            raise ValueError(f"selective_depth must be None (every stage and level) or at least 1, got {selective_depth}")
        if linear_init not in LINEAR_INITS:
            raise ValueError(f"linear_init={linear_init!r} is not one of {LINEAR_INITS}")
        if attention not in ATTENTIONS:
            raise ValueError(f"attention={attention!r} is not one of {sorted(ATTENTIONS)} (attention.ATTENTIONS)")
        # all but the lowest-resolution stage at most: nnU-Net's planner shrinks patches, and stages with them,
        # so the default of 2 meets plans of two stages (the smallest it plans), which get the stem alone
        conv_stages = min(conv_stages, max(len(features_per_stage) - 1, 1))
        if transformer_depth is not None:
            if transformer_depth < 1:
                raise ValueError(f"transformer_depth must be at least 1, got {transformer_depth}")
            planned = [depths] * len(features_per_stage) if isinstance(depths, int) else list(depths)
            depths = planned[:conv_stages] + [transformer_depth] * (len(features_per_stage) - conv_stages)
        self.layout: List[StageLayout] = plan_stage_layout(
            patch_size, features_per_stage, strides, kernel_sizes, depths, head_dim, window_size, max_global_tokens,
            conv_stages
        )
        self.patch_size = tuple(int(p) for p in patch_size)
        conv_op = convert_dim_to_conv_op(len(patch_size))
        conv_unit = conv_unit or ConvUnitSpec(conv_op)
        levels = len(self.layout) - 1
        units = [decoder_units] * levels if isinstance(decoder_units, int) else list(decoder_units)
        self.encoder = DynTransEncoder(
            conv_op, input_channels, self.layout, mlp_ratio, drop_path_rate, attention, fused_attn, conv_unit,
            patch_embedding,
        )
        self.decoder = DynTransDecoder(conv_op, self.layout, num_classes, fusion, residual_refine, deep_supervision,
                                       conv_unit, units, rm_post_activation, rm_shortcut)
        self.set_checkpointing(CheckpointingPolicy(activation_checkpointing and len(self.encoder.stages) > 0,
                                                   selective_parts(selective_checkpointing), selective_depth))
        self.apply(InitWeights_He(1e-2))
        if linear_init == "vit":
            self.apply(_init_transformer_weights)
        # "fan_in": the linear layers keep torch's construction-time init (uniform, bound 1 / sqrt(fan_in))

    def set_checkpointing(self, policy: CheckpointingPolicy) -> None:
        """What the network recomputes in backward, as one policy that the encoder and the decoder each read their
        share of. Parameters and outputs are the same under every policy, so a trainer can decide after building
        the network (``gpu_fit``)."""
        policy = replace(policy, activation=bool(policy.activation) and len(self.encoder.stages) > 0)
        self.checkpointing = policy
        self.encoder.set_checkpointing(policy)
        self.decoder.set_checkpointing(policy)

    def set_activation_checkpointing(self, enabled: bool) -> None:
        """The policy with ``activation_checkpointing`` (the constructor's argument) switched on or off."""
        self.set_checkpointing(replace(self.checkpointing, activation=bool(enabled)))

    def set_selective_checkpointing(self, enabled: Union[bool, str]) -> None:
        """The policy with ``selective_checkpointing`` (the constructor's argument) set: True or False for every part,
        or the parts by name joined with ``+`` (``"transformer"``, ``"stem+decoder"``; :data:`SELECTIVE_PARTS`).
        Each part keeps only what :mod:`~nnunet_dyntransnet.network.checkpointing` says."""
        self.set_checkpointing(replace(self.checkpointing, selective=selective_parts(enabled)))

    @property
    def selective_depth(self) -> Optional[int]:
        return self.checkpointing.depth

    @property
    def selective_checkpointing(self) -> Union[bool, str]:
        """As the constructor takes it: False, True (every part) or the parts joined with ``+``."""
        parts = self.checkpointing.selective
        if not parts:
            return False
        return True if parts == SELECTIVE_PARTS else "+".join(parts)

    @property
    def activation_checkpointing(self) -> bool:
        return self.checkpointing.activation

    @property
    def total_stride(self) -> tuple:
        return total_stride([s.stride for s in self.layout], len(self.patch_size))

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, List[torch.Tensor]]:
        spatial = tuple(x.shape[2:])
        total = self.total_stride
        if len(spatial) != len(total) or any(s % t for s, t in zip(spatial, total)):
            raise ValueError(
                f"input spatial size {list(spatial)} must have {len(total)} axes, each divisible by the "
                f"network's total stride {list(total)}"
            )
        return self.decoder(self.encoder(x))

    def _voxels_per_stage(self, input_size: Sequence[int]) -> List[int]:
        if len(input_size) != len(self.patch_size):
            raise ValueError(f"input_size {list(input_size)} must have {len(self.patch_size)} axes (no batch or channel axis)")
        return voxels_per_stage(self.layout, input_size)

    def saved_activation_elements(self, input_size: Sequence[int]) -> Dict[str, float]:
        """Elements kept for backward per sample for an input of ``input_size`` voxels, by part (``input``,
        ``stem``, ``transformer``, ``decoder``), as each block reports them (its ``saved_elements``)."""
        voxels = self._voxels_per_stage(input_size)
        return {**self.encoder.saved_elements(voxels), "decoder": self.decoder.saved_elements(voxels)}

    def recomputed_elements(self, input_size: Sequence[int]) -> float:
        """With activation checkpointing, the most elements per sample alive again at once in backward (one
        recomputed block, or the recomputed full-resolution level); 0 without. Like nnU-Net's count,
        :meth:`saved_activation_elements` leaves this transient out; the fit-to-GPU decision adds it."""
        voxels = self._voxels_per_stage(input_size)
        return max(self.encoder.recomputed_elements(voxels), self.decoder.recomputed_elements(voxels))

    def compute_conv_feature_map_size(self, input_size: Sequence[int]) -> int:
        """Activation memory per sample for an input of ``input_size`` voxels, in the units of nnU-Net's U-Nets.

        nnU-Net's planners compare this number with their reference to size patch and batch;
        it counts the transformer stages (attention and MLP activations) and the decoder as well
        as the convolutions. See :mod:`nnunet_dyntransnet.network.units`.
        """
        return in_nnunet_units(sum(self.saved_activation_elements(input_size).values()))

    def describe(self) -> str:
        """Stage table (grid, channels, heads, windows, tokens per attention) and parameter count."""
        params = sum(p.numel() for p in self.parameters())
        return f"{format_layout(self.layout)}\nparameters: {params:,}"

    @classmethod
    def from_plan(
        cls,
        configuration_manager: Any,
        num_input_channels: int,
        num_output_channels: int,
        enable_deep_supervision: bool = True,
        **overrides: Any,
    ) -> "DynTransNet":
        """Build from an nnU-Net ``ConfigurationManager`` (or any object with the same attributes).

        Reads ``patch_size`` and, from ``network_arch_init_kwargs``, ``features_per_stage``,
        ``strides``, ``kernel_sizes``, ``n_conv_per_stage`` (or ResEnc's ``n_blocks_per_stage``) as
        depths, ``n_conv_per_stage_decoder`` as RM's conv units, and the conv units' layers
        (``conv_op``, ``conv_bias``, ``norm_op``, ``norm_op_kwargs``, ``nonlin``, ``nonlin_kwargs``;
        ``dropout_op`` must be null). ``overrides`` replace any constructor argument.

        Raises:
            ValueError: an entry the network cannot honour, named.
        """
        arch: Mapping[str, Any] = configuration_manager.network_arch_init_kwargs
        missing = [k for k in ("features_per_stage", "strides", "kernel_sizes") if k not in arch]
        if missing:
            raise ValueError(
                f"the plan's network_arch_init_kwargs lack {missing}; DynTransNet needs a plan made by an "
                f"nnU-Net U-Net planner (e.g. the default ExperimentPlanner)"
            )
        kwargs = dict(
            input_channels=num_input_channels,
            num_classes=num_output_channels,
            patch_size=configuration_manager.patch_size,
            features_per_stage=arch["features_per_stage"],
            strides=arch["strides"],
            kernel_sizes=arch["kernel_sizes"],
            depths=arch.get("n_conv_per_stage", arch.get("n_blocks_per_stage", 2)),
            decoder_units=arch.get("n_conv_per_stage_decoder", 2),
            conv_unit=ConvUnitSpec.from_plan(convert_dim_to_conv_op(len(configuration_manager.patch_size)), arch),
            deep_supervision=enable_deep_supervision,
        )
        kwargs.update(overrides)
        return cls(**kwargs)


def capped_widths(configuration_manager: Any, base: int, cap: int) -> List[int]:
    """Widths ``base * 2**i`` capped at ``cap``, one per stage of the plan: a narrow network on the plan's
    stages (the CPU demo and the tests train such networks)."""
    n = len(configuration_manager.network_arch_init_kwargs["features_per_stage"])
    return [min(base * 2 ** i, cap) for i in range(n)]


def network_defaults() -> Dict[str, Any]:
    """DynTransNet's constructor defaults, by argument name: the one place they are written down
    (the trainers record them with their options; the report reads which ablation a trainer builds)."""
    return {name: p.default for name, p in inspect.signature(DynTransNet.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


# how the linear layers start (``linear_init``): ViT's small normal, or torch's fan-in scaled default
LINEAR_INITS = ("vit", "fan_in")


def _init_transformer_weights(module: nn.Module) -> None:
    # Linear layers get the ViT initialisation; convolutions keep nnU-Net's He init.
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
