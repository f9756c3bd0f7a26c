"""The convolution unit of the stem and of RM, built from the plan's layer entries as nnU-Net's U-Nets are.

nnU-Net's plans name the layers of every conv unit (``conv_op``, ``conv_bias``, ``norm_op`` with
``norm_op_kwargs``, ``nonlin`` with ``nonlin_kwargs``, ``dropout_op``), and
dynamic_network_architectures builds its units from them, so a plan edited to BatchNorm trains
with BatchNorm. :class:`ConvUnitSpec` carries those entries; :class:`ConvNormAct` is the unit.
An entry DynTransNet cannot honour is refused with a ``ValueError`` that names it.
"""
from __future__ import annotations

import pydoc
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Type, Union

import torch
import torch.nn.functional as F
from dynamic_network_architectures.building_blocks.helper import get_matching_instancenorm
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm

__all__ = ["ConvUnitSpec", "ConvNormAct", "InstanceNormByGroups"]


def _locate(value: Any, key: str) -> Any:
    """A class named by its dotted path in the plan (``"torch.nn.BatchNorm3d"``), or the class itself."""
    if value is None or not isinstance(value, str):
        return value
    located = pydoc.locate(value)
    if located is None:
        raise ValueError(f"the plan's {key} {value!r} names no importable class; fix the plans file")
    return located


@dataclass(frozen=True)
class ConvUnitSpec:
    """The layers of a conv unit: conv (same padding) -> norm -> nonlinearity; nnU-Net's defaults if not given.

    Shapes: none (a description); :meth:`from_plan` reads it from ``network_arch_init_kwargs``.
    """

    conv_op: Type[_ConvNd]
    conv_bias: bool = True
    norm_op: Optional[Type[nn.Module]] = None  # None: InstanceNorm of conv_op's dimensionality
    norm_op_kwargs: Mapping[str, Any] = field(default_factory=lambda: {"eps": 1e-5, "affine": True})
    nonlin: Optional[Type[nn.Module]] = nn.LeakyReLU
    nonlin_kwargs: Mapping[str, Any] = field(default_factory=lambda: {"inplace": True})

    @classmethod
    def from_plan(cls, conv_op: Type[_ConvNd], arch: Mapping[str, Any]) -> "ConvUnitSpec":
        """The plan's entries; refuses a ``conv_op`` of another dimensionality and a ``dropout_op``."""
        planned = _locate(arch.get("conv_op"), "conv_op")
        if planned is not None and planned is not conv_op:
            raise ValueError(f"the plan's conv_op {planned.__name__} does not match its {conv_op.__name__[-2:]} "
                             f"patch; DynTransNet takes the convolution's dimensionality from the patch")
        if _locate(arch.get("dropout_op"), "dropout_op") is not None:
            raise ValueError(f"the plan's dropout_op {arch['dropout_op']!r}: DynTransNet's conv units have no dropout; "
                             f"set dropout_op to null in the plans file")
        kwargs = {}
        for key in ("conv_bias", "norm_op", "norm_op_kwargs", "nonlin", "nonlin_kwargs"):
            if key in arch:
                kwargs[key] = _locate(arch[key], key)
        kwargs = {k: ({} if v is None and k.endswith("_kwargs") else v) for k, v in kwargs.items()}
        return cls(conv_op=conv_op, **kwargs)

    @property
    def nonlin_in_place(self) -> bool:
        return self.nonlin is not None and bool(self.nonlin_kwargs.get("inplace", False))


class InstanceNormByGroups(_InstanceNorm):
    """InstanceNorm without running statistics, computed as GroupNorm with one channel per group (the same
    normalisation: statistics per sample and channel, an affine weight and bias per channel; the same parameters).

    Why: torch's InstanceNorm returns a view of a reshaped batch-norm output, so the in-place LeakyReLU that follows
    in nnU-Net's units makes autograd copy the whole base back in backward (``CopySlices``), and out of place it
    keeps one activation more. GroupNorm's output is a tensor of its own: the nonlinearity stays in place and free.

    Shapes: ``(B, C, *spatial)`` -> same.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.num_features, self.weight, self.bias, self.eps)


def _norm(norm_op: Type[nn.Module], channels: int, kwargs: Mapping[str, Any]) -> nn.Module:
    """The plan's norm; its InstanceNorm (without running statistics, as nnU-Net plans it) as :class:`InstanceNormByGroups`."""
    norm = norm_op(channels, **kwargs)
    if isinstance(norm, _InstanceNorm) and not norm.track_running_stats:
        norm = InstanceNormByGroups(channels, **kwargs)
    return norm


class ConvNormAct(nn.Sequential):
    """Conv (same padding) -> norm -> nonlinearity, as the plan names them (default: InstanceNorm, LeakyReLU).

    Shapes: ``(B, C_in, *spatial)`` -> ``(B, C_out, *spatial / stride)`` (the first unit of a convolutional stage
    downsamples as nnU-Net's U-Net does, by its convolution's stride).
    """

    def __init__(self, spec: ConvUnitSpec, in_channels: int, out_channels: int, kernel_size: Sequence[int],
                 stride: Union[int, Sequence[int]] = 1) -> None:
        padding = tuple(k // 2 for k in kernel_size)
        norm_op = spec.norm_op or get_matching_instancenorm(spec.conv_op)
        stride = tuple(stride) if not isinstance(stride, int) else stride
        layers = [spec.conv_op(in_channels, out_channels, tuple(kernel_size), stride=stride, padding=padding,
                               bias=spec.conv_bias),
                  _norm(norm_op, out_channels, spec.norm_op_kwargs)]
        if spec.nonlin is not None:
            layers.append(spec.nonlin(**spec.nonlin_kwargs))
        super().__init__(*layers)
        self.planned_in_place = spec.nonlin_in_place
        # torch's InstanceNorm returns a view (a plan's InstanceNorm with running statistics still does)
        self.norm_returns_view = isinstance(self[1], _InstanceNorm) and not isinstance(self[1], InstanceNormByGroups)
        self.allow_in_place(True)

    def allow_in_place(self, allowed: bool) -> None:
        """Let the nonlinearity work in place where the plan says so (the default), or not where the norm returns
        a view.

        In place it keeps only its result for backward, one activation less, recomputed or not. But a write into
        a view of the norm's output (torch's InstanceNorm) makes autograd copy the whole base in backward
        (``CopySlices``); where selective checkpointing recomputed the unit, torch's memory profiler measured the
        default network of the day, with torch's InstanceNorm, lower out of place (709 -> 662 MiB,
        ``measurements/results/cpu_2026-11-30/memory_timeline_32x64x64.json``). The plan's usual InstanceNorm is
        built as :class:`InstanceNormByGroups`, whose output is no view, so its units stay in place."""
        in_place = self.planned_in_place and (allowed or not self.norm_returns_view)
        if self.planned_in_place:
            self[-1].inplace = in_place
        self.in_place = in_place or len(self) == 2  # no nonlinearity: the norm's output is the unit's
        # an in-place nonlinearity keeps its result for backward: the unit's output is kept whoever follows
        self.keeps_own_output = in_place

    def saved_elements(self, voxels: int) -> float:
        """The conv output (kept by the norm), the norm's output when the nonlinearity keeps its input (not in
        place), and the unit's output (kept by whatever follows)."""
        return (2.0 if self.in_place else 3.0) * self[0].out_channels * voxels
