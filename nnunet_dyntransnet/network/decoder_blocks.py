"""Decoder building blocks: the Feature Mix Module (FM-M), its ablation fusions, and the Residual Module (RM).

All take channels-first tensors ``(B, C, *spatial)`` and work in 2D and 3D (``conv_op``).

Each block reports what it keeps for backward, ``saved_elements(voxels)``: elements per sample
for ``voxels`` voxels at its resolution, counted as autograd saves them (measured with
``saved_tensors_hooks``; ``tests/network/test_memory_model.py`` checks the network's total). The
network sums them for nnU-Net's planners (:mod:`nnunet_dyntransnet.network.units`).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Type

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.utils.checkpoint import checkpoint

from nnunet_dyntransnet.network.conv_unit import ConvNormAct, ConvUnitSpec
from nnunet_dyntransnet.network.pointwise import pointwise_conv

__all__ = ["Fusion", "FeatureMix", "ConcatFusion", "WeightedSumFusion", "ResidualRefine", "FUSIONS", "register_fusion"]


class ResidualRefine(nn.Module):
    """Residual Module (RM, paper Algorithm 3): ``F = X + LReLU(IN(Conv(LReLU(IN(Conv(X))))))``.

    The conv units are the plan's (:class:`~nnunet_dyntransnet.network.conv_unit.ConvUnitSpec`: InstanceNorm
    and LeakyReLU unless the plan names others), as many as the plan's ``n_conv_per_stage_decoder`` (2 in
    nnU-Net's plans, the paper's two blocks).

    Args:
        residual: add ``X`` back (the RM). False is the paper's "no RM" ablation as this project
            reads it: the same two conv units without the residual connection, so a network
            with and without RM has the same parameters and the ablation measures residual
            refinement, not decoder capacity (an identity would drop every 3x3 conv of the decoder).
        post_activation: apply the units' nonlinearity once more after the residual sum,
            ``F = LReLU(X + LReLU(IN(Conv(LReLU(IN(Conv(X)))))))``, as a ResNet block and nnU-Net's residual
            blocks do (False: the paper's Algorithm 3, whose output is the plain sum). Why: the head that reads
            the level is linear, so with the plain sum its logits are one term from ``X`` (FM-M's 1x1 mix of the
            upsampled decoder map and the gated skip) plus one from the units, each computed without the other.
            In the phantom's trained models some folds read tumor from ``X``'s term alone, through no spatial
            convolution at full resolution, and the others from the units' term with ``X``'s voting background
            (``docs/comparison/screens/rm_logit_split.py``). A nonlinearity after the sum lets the level's
            features combine the two before the head. On the phantom it made far more false positives (the
            screens' ``rm_post``), so it stays off.

    Shapes: ``(B, C, *spatial)`` -> same.
    """

    def __init__(self, spec: ConvUnitSpec, channels: int, kernel_size: Sequence[int], residual: bool = True,
                 units: int = 2, post_activation: bool = False) -> None:
        super().__init__()
        if units < 1:
            raise ValueError(f"RM needs at least one conv unit, got n_conv_per_stage_decoder={units}")
        if post_activation and (not residual or spec.nonlin is None):
            raise ValueError("rm_post_activation=True needs RM's residual sum (residual_refine=True) and a nonlinearity "
                             "in the plan's conv units (nonlin); without either there is nothing to activate after")
        self.residual = residual
        self.body = nn.Sequential(*(ConvNormAct(spec, channels, channels, kernel_size) for _ in range(units)))
        # in place when the plan's nonlinearity is: the sum is a tensor of its own, and the result is kept anyway
        self.after_sum = spec.nonlin(**spec.nonlin_kwargs) if post_activation else None

    def forward(self, x: torch.Tensor, shortcut: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``shortcut`` (same shape as ``x``) is what the residual adds back, ``x`` itself unless given (the decoder's
        ``rm_shortcut="decoder"`` gives the upsampled decoder map)."""
        if not self.residual:
            return self.body(x)
        out = (x if shortcut is None else shortcut) + self.body(x)
        return self.after_sum(out) if self.after_sum is not None else out

    def saved_elements(self, voxels: int) -> float:
        """Its input (kept by the first conv) and its conv units. The residual addition keeps nothing, so the last
        unit's output is kept only by an in-place nonlinearity (which keeps its result); otherwise it is not. A
        nonlinearity after the sum keeps its result in place (the level's output, counted by the decoder) or the
        sum out of place."""
        units = sum(unit.saved_elements(voxels) for unit in self.body)
        if self.residual and not self.body[-1].keeps_own_output:
            units -= self.body[-1][0].out_channels * voxels
        if self.after_sum is not None and not getattr(self.after_sum, "inplace", False):
            units += self.body[-1][0].out_channels * voxels
        return self.body[0][0].in_channels * voxels + units


class Fusion(nn.Module):
    """A decoder level's fusion of the upsampled decoder map ``D`` with the skip ``E``: FM-M or an ablation.

    The whole contract of a fusion, which the decoder builds by its name in ``FUSIONS``. A new one subclasses
    this class, registers itself with :func:`register_fusion` and provides:

    - the constructor ``(conv_op, decoder_channels, encoder_channels, out_channels)`` (``conv_op``:
      ``nn.Conv2d`` or ``nn.Conv3d``; in this network all three widths are equal);
    - ``forward(decoder, skip)``: ``(B, C_d, *s)``, ``(B, C_e, *s)`` -> ``(B, out_channels, *s)``;
    - ``saved_elements(voxels)``: elements it keeps for backward per sample for ``voxels`` voxels at its
      resolution, which nnU-Net's planners read through the network's memory model (no default: only the fusion
      knows; the skip is the encoder's, counted there).

    The rest has defaults that hold for a fusion that does not checkpoint itself: :meth:`unchecked` (the fusion
    as a decoder level that a checkpoint recomputes runs it) is ``forward``, :meth:`kept_elements` is
    ``saved_elements`` and :meth:`recomputed_elements` is 0.
    """

    def forward(self, decoder: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no forward(decoder, skip)")

    def saved_elements(self, voxels: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} must say what it keeps for backward, saved_elements(voxels): "
                                  f"nnU-Net's planners read it (docs/developing.md)")

    def kept_elements(self, voxels: int) -> float:
        """What the fusion keeps for backward when it does not recompute itself (as :meth:`unchecked` runs it)."""
        return self.saved_elements(voxels)

    def recomputed_elements(self, voxels: int) -> float:
        """What the fusion holds again in backward when it recomputes itself: nothing, unless it does."""
        return 0.0

    def unchecked(self, decoder: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """The fusion without a recomputation of its own: for a decoder level that a checkpoint recomputes as a
        whole, where one more would run the fusion a third time."""
        return self(decoder, skip)


class FeatureMix(Fusion):
    """Feature Mix Module (FM-M, paper Algorithm 2): an attention gate on the skip, then a 1x1 fusion.

    ``g = W_g D``, ``x = W_x E``, ``psi = sigmoid(W_psi ReLU(g + x))`` (one channel),
    ``E' = psi * E``, ``F = W_f [D, E']``.

    Args:
        conv_op: ``nn.Conv2d`` or ``nn.Conv3d``.
        decoder_channels: ``C_d`` of the upsampled decoder map ``D``.
        encoder_channels: ``C_e`` of the skip ``E``.
        out_channels: channels of ``F``.

    The gate works in ``max(1, C_e // 2)`` channels (``g`` and ``x``), as Attention U-Net's does.

    Shapes: ``forward(decoder, skip)``: ``(B, C_d, *s)``, ``(B, C_e, *s)`` -> ``(B, out_channels, *s)``.
    """

    def __init__(
        self,
        conv_op: Type[_ConvNd],
        decoder_channels: int,
        encoder_channels: int,
        out_channels: int,
    ) -> None:
        super().__init__()
        gate_channels = max(1, encoder_channels // 2)
        self.w_g = conv_op(decoder_channels, gate_channels, 1)
        self.w_x = conv_op(encoder_channels, gate_channels, 1)
        self.w_psi = conv_op(gate_channels, 1, 1)
        self.w_f = conv_op(decoder_channels + encoder_channels, out_channels, 1)
        # recompute the module in backward instead of keeping its intermediates (same outputs and gradients)
        self.recompute = True

    def gate(self, decoder: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """The attention map ``psi``: ``(B, 1, *s)`` in (0, 1)."""
        return torch.sigmoid(self.w_psi(torch.relu(self.w_g(decoder) + self.w_x(skip))))

    def mix(self, decoder: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """``W_f [D, psi * E]``, every intermediate kept by autograd, computed without the concatenation.

        ``W_f`` splits into the columns that read ``D`` and those that read ``E``; a 1x1 convolution acts on each
        voxel alone and ``psi`` is one number per voxel, so ``W_f [D, psi E] = W_f^D D + psi (W_f^E E) + b_f``.
        ``W_g`` and ``W_f^D`` then read ``D`` in one convolution (split, not sliced: a split's gradient is one
        concatenation, two slices' two zero-filled full-size tensors), and neither the ``C_d + C_e``-channel
        concatenation nor ``psi E`` is built. ``W_x E`` and ``W_f^E E`` stay two convolutions: one fused
        convolution would be kept whole for its part ``W_f^E E``. The parameters are the paper's four
        convolutions, as before (checkpoints load unchanged).
        """
        gate_channels, cd = self.w_g.out_channels, decoder.shape[1]
        on_decoder = pointwise_conv(  # [W_g D + b_g + b_x, W_f^D D + b_f]
            decoder, torch.cat((self.w_g.weight, self.w_f.weight[:, :cd])),
            torch.cat((self.w_g.bias + self.w_x.bias, self.w_f.bias)))
        g, fused_decoder = on_decoder.split((gate_channels, on_decoder.shape[1] - gate_channels), dim=1)
        x = pointwise_conv(skip, self.w_x.weight)
        psi = torch.sigmoid(pointwise_conv(torch.relu(g + x), self.w_psi.weight, self.w_psi.bias))
        return torch.addcmul(fused_decoder, psi, pointwise_conv(skip, self.w_f.weight[:, cd:]))

    def forward(self, decoder: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.recompute and torch.is_grad_enabled():
            # FM-M has only 1x1 convolutions and elementwise operations (about 2 C^2 multiply-adds per voxel, against
            # RM's 54 C^2), yet would keep 2.5 C + 1 elements per voxel: recomputing it in backward keeps only D (the
            # skip is kept by the encoder anyway)
            return checkpoint(self.mix, decoder, skip, use_reentrant=False)
        return self.mix(decoder, skip)

    def unchecked(self, decoder: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.mix(decoder, skip)

    def saved_elements(self, voxels: int) -> float:
        """Recomputed (the default): ``D``, kept as the recomputation's input; else :meth:`kept_elements`. The skip is
        the encoder's, counted there."""
        return float(self.w_g.in_channels * voxels) if self.recompute else self.kept_elements(voxels)

    def kept_elements(self, voxels: int) -> float:
        """``D`` (by the convolution that reads it), the gate's ReLU output, ``psi``, and ``W_f^E E`` (for ``psi``'s
        gradient)."""
        return float((self.w_g.in_channels + self.w_g.out_channels + self.w_f.out_channels + 1) * voxels)

    def recomputed_elements(self, voxels: int) -> float:
        """What the recomputation holds again in backward: :meth:`kept_elements` (0 when not recomputed)."""
        return self.kept_elements(voxels) if self.recompute else 0.0


class ConcatFusion(Fusion):
    """Ablation "FM-M as simple concatenation": ``F = W_f [D, E]`` (no gate).

    Shapes: as :class:`FeatureMix`.
    """

    def __init__(self, conv_op: Type[_ConvNd], decoder_channels: int, encoder_channels: int, out_channels: int) -> None:
        super().__init__()
        self.w_f = conv_op(decoder_channels + encoder_channels, out_channels, 1)

    def forward(self, decoder: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return pointwise_conv(torch.cat((decoder, skip), dim=1), self.w_f.weight, self.w_f.bias)

    def saved_elements(self, voxels: int) -> float:
        """The concatenation, kept by ``W_f``."""
        return float(self.w_f.in_channels * voxels)


class WeightedSumFusion(Fusion):
    """Ablation "FM-M as weighted sum": ``F = a * D + b * E`` with learnable scalars ``a``, ``b`` (both start at 0.5).

    Needs ``C_d == C_e == out_channels`` (true in this network: the transposed convolution
    maps to the skip's width).

    Shapes: as :class:`FeatureMix`.
    """

    def __init__(self, conv_op: Type[_ConvNd], decoder_channels: int, encoder_channels: int, out_channels: int) -> None:
        super().__init__()
        if not decoder_channels == encoder_channels == out_channels:
            raise ValueError(
                f"WeightedSumFusion needs equal channel counts, got decoder={decoder_channels}, "
                f"encoder={encoder_channels}, out={out_channels}; use fusion='concat' or 'feature_mix'."
            )
        self.weights = nn.Parameter(torch.full((2,), 0.5))
        self.channels = out_channels

    def forward(self, decoder: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.weights[0] * decoder + self.weights[1] * skip

    def saved_elements(self, voxels: int) -> float:
        """``D``, kept for the gradient of ``a`` (the skip, kept for ``b``'s, is the encoder's, counted there)."""
        return float(self.channels * voxels)


# The fusion a decoder level uses, by the name DynTransNet's ``fusion`` option takes (register_fusion).
FUSIONS: Dict[str, type] = {}


def register_fusion(name: str, cls: type) -> type:
    """Make a :class:`Fusion` subclass the fusion DynTransNet builds for ``fusion=name``; returns it."""
    if not (isinstance(cls, type) and issubclass(cls, Fusion)):
        raise TypeError(f"register_fusion({name!r}, ...): {cls!r} is not a subclass of Fusion, whose contract "
                        f"(constructor, forward, saved_elements, unchecked) the decoder relies on")
    FUSIONS[name] = cls
    return cls


for _name, _cls in (("feature_mix", FeatureMix), ("concat", ConcatFusion), ("weighted_sum", WeightedSumFusion)):
    register_fusion(_name, _cls)
