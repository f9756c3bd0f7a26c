"""Does a DynTransNet training fit the GPU? The decision the trainers make on CUDA before training.

The estimate of the training's peak memory, in bytes, is the network's
``compute_conv_feature_map_size`` (what its blocks keep for backward, in the units of
nnU-Net's; :mod:`nnunet_dyntransnet.network.units`) times the batch times :data:`BYTES_PER_UNIT`;
with activation checkpointing it adds what backward recomputes at once
(``DynTransNet.recomputed_elements``).

:data:`BYTES_PER_UNIT` is calibrated on the GPU measurement in
``measurements/results/h200_2026-11-28/train_128_bf16.json`` (128^3 patch, batch 2, bf16
autocast, peak of ``torch.cuda.max_memory_allocated``): 9.77 GiB for 2 x 1010.7 M units
without checkpointing (5.19 bytes per unit) and 7.37 GiB for 2 x (462.6 + 325.3) M units
with it (5.02). Weights, gradients and AdamW's state (16 bytes per parameter, 0.3 GiB there)
are inside that figure.

``DYNTRANSNET_CHECKPOINTING`` overrides the decision: ``on`` or ``off``; ``auto`` (default)
decides. A trainer whose class already asks for checkpointing (``_Checkpointed``) keeps it
on under ``auto``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

from nnunet_dyntransnet.network.units import in_nnunet_units

__all__ = ["CHECKPOINTING_ENV", "BYTES_PER_UNIT", "HEADROOM", "DoesNotFitError", "FitDecision", "checkpointing_mode",
           "training_bytes", "decide_checkpointing", "fit_to_gpu", "free_gpu_bytes"]

CHECKPOINTING_ENV = "DYNTRANSNET_CHECKPOINTING"
BYTES_PER_UNIT = 5.2  # per sample and memory-model unit, under autocast (see the module docstring)
HEADROOM = 0.9  # plan for 90% of the free memory: the allocator fragments, and the estimate is +-5%
GiB = 2 ** 30


class DoesNotFitError(RuntimeError):
    """Even with activation checkpointing the training would not fit the GPU's free memory."""


@dataclass(frozen=True)
class FitDecision:
    """What the trainer does: ``checkpointing`` on or off, and the sentence it logs."""

    checkpointing: bool
    message: str


def checkpointing_mode() -> str:
    """``DYNTRANSNET_CHECKPOINTING`` as ``auto``, ``on`` or ``off`` (1/true/yes and 0/false/no accepted)."""
    raw = os.environ.get(CHECKPOINTING_ENV, "auto").strip().lower() or "auto"
    mode = {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}.get(raw, raw)
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"{CHECKPOINTING_ENV}={raw!r}: use auto (decide from the GPU's free memory), on or off")
    return mode


def training_bytes(network: Any, batch_size: int, checkpointing: bool) -> int:
    """Estimated peak bytes of a training step of ``network`` (a DynTransNet) at its patch and ``batch_size``."""
    was = network.activation_checkpointing
    network.set_activation_checkpointing(checkpointing)
    try:
        patch = network.patch_size
        units = network.compute_conv_feature_map_size(patch) + in_nnunet_units(network.recomputed_elements(patch))
    finally:
        network.set_activation_checkpointing(was)
    return int(BYTES_PER_UNIT * batch_size * units)


def decide_checkpointing(need_plain: int, need_checkpointed: int, free_bytes: int, mode: str = "auto",
                         class_default: bool = False, dataset: str = "DATASET_ID") -> FitDecision:
    """Checkpointing on or off for a training that needs ``need_plain`` / ``need_checkpointed`` bytes.

    Raises:
        DoesNotFitError: under ``auto``, when even ``need_checkpointed`` exceeds the usable free memory;
            the message names the planner command that makes a smaller plan.
    """
    usable = HEADROOM * free_bytes
    sizes = (f"estimated peak {need_plain / GiB:.1f} GiB without activation checkpointing, "
             f"{need_checkpointed / GiB:.1f} GiB with it; {free_bytes / GiB:.1f} GiB free on the GPU")
    if mode == "on":
        return FitDecision(True, f"activation checkpointing on ({CHECKPOINTING_ENV}=on); {sizes}")
    if mode == "off":
        fits = "" if need_plain <= usable else " (it may run out of memory)"
        return FitDecision(False, f"activation checkpointing off ({CHECKPOINTING_ENV}=off){fits}; {sizes}")
    if class_default:
        return FitDecision(True, f"activation checkpointing on (this trainer's network option); {sizes}")
    if need_plain <= usable:
        return FitDecision(False, f"activation checkpointing off: the training fits; {sizes}")
    if need_checkpointed <= usable:
        return FitDecision(True, f"activation checkpointing on: without it the training would not fit; {sizes}")
    target = max(1, int(usable / GiB))
    raise DoesNotFitError(
        f"this plan does not fit the GPU: {sizes}. Make a plan for this GPU's memory and train with it: "
        f"`dyntransnet_plan_and_preprocess -d {dataset} -gpu_memory_target {target}`, then "
        f"`nnUNetv2_train ... -p <the plans name it prints>` (or set {CHECKPOINTING_ENV}=on to try anyway)")


def free_gpu_bytes(device: Any) -> int:
    """Free memory of the CUDA ``device`` as the driver reports it."""
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    return int(free)


def fit_to_gpu(network: Any, batch_size: int, free_bytes: int, class_default: bool = False,
               dataset: str = "DATASET_ID", mode: Optional[str] = None) -> FitDecision:
    """The decision for ``network`` (a DynTransNet) at ``batch_size``, applied to it."""
    decision = decide_checkpointing(training_bytes(network, batch_size, False), training_bytes(network, batch_size, True),
                                    free_bytes, mode or checkpointing_mode(), class_default, dataset)
    network.set_activation_checkpointing(decision.checkpointing)
    return decision
