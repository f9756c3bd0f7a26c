"""Selective activation checkpointing: keep what is costly to redo, recompute the cheap operations in backward.

Plain activation checkpointing (``DynTransNet(activation_checkpointing=True)``) keeps only a
part's input and reruns the whole part in backward. FM-M is always rerun that way
(:class:`~nnunet_dyntransnet.network.decoder_blocks.FeatureMix`: 1x1 convolutions and elementwise
operations only). Selective checkpointing (``selective_checkpointing=True``, or the parts named,
``"transformer+decoder"``) reruns only the cheap operations, as ``torch.utils.checkpoint``'s
selective policy decides per dispatched operation (CPU and CUDA alike):

- in a transformer block (:func:`block_policy`) it keeps the fused attention's outputs (output
  and log-sum-exp) and the MLP's first matmul; it recomputes LayerNorm, GELU, the rotary
  rotation, window partition and reverse, the folded-bias concatenation and padding, the
  residual additions, and the narrow matmuls, the qkv projection among them (3 C x C per token,
  little beside the attention over a window, and the largest tensor a block would keep);
- in the convolutional parts, the stem and every decoder level (:func:`conv_policy`), it keeps
  the outputs of the spatial (3x3x3) convolutions and recomputes the 1x1 convolutions (FM-M's
  gate and fusion: a concatenation of skip and decoder map is never kept), InstanceNorm,
  LeakyReLU, the gate's sigmoid and products.

What each part then keeps is counted by its ``saved_elements``; ``tests/network/test_memory_model.py``
checks the counts against what stays alive after a forward pass, and that outputs and
gradients equal the plain network's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Optional, Tuple

import torch
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

__all__ = ["KEPT_ATTENTION_OPS", "SELECTIVE_PARTS", "CheckpointingPolicy", "block_policy", "conv_policy", "kept_matmul",
           "selective_checkpoint"]

# the parts selective checkpointing can cover, in the order a network's forward pass meets them
SELECTIVE_PARTS = ("stem", "transformer", "decoder")


@dataclass(frozen=True)
class CheckpointingPolicy:
    """What DynTransNet recomputes in backward, decided in one place and handed whole to each part
    (``DynTransNet.set_checkpointing``; the encoder and the decoder read their share of it).

    Attributes:
        activation: full activation checkpointing of the highest-resolution transformer stage and decoder level
            (they keep only their inputs; the constructor's ``activation_checkpointing``, which the fit-to-GPU
            decision may switch on after building).
        selective: the parts (:data:`SELECTIVE_PARTS`) that keep only what :func:`block_policy` and
            :func:`conv_policy` say (the constructor's ``selective_checkpointing``).
        depth: how many transformer stages and decoder levels, from the highest resolution down, ``selective``
            covers; None: all (the constructor's ``selective_depth``).
    """

    activation: bool = False
    selective: Tuple[str, ...] = ("transformer", "decoder")
    depth: Optional[int] = 2

    def covers(self, part: str, index: int = 0) -> bool:
        """Whether ``part`` recomputes selectively at ``index`` (a transformer stage or decoder level, 0 = the
        highest resolution)."""
        return part in self.selective and (part == "stem" or self.depth is None or index < self.depth)

aten = torch.ops.aten
# fused attention kernels whose outputs are kept (one per backend scaled_dot_product_attention picks)
KEPT_ATTENTION_OPS = frozenset(
    getattr(aten, name).default
    for name in ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
                 "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention")
    if hasattr(aten, name)
)


def kept_matmul(in_features: int, out_features: int) -> bool:
    """Whether :func:`block_policy` keeps a linear layer's output: a widening one (the MLP's first layer) other than
    the qkv projection, which is exactly three times as wide (so an MLP ratio of 3 is recomputed too)."""
    return in_features < out_features != 3 * in_features


def _kept_matmul_op(op: Any, args: tuple) -> bool:
    """``mm(a, b)`` / ``addmm(bias, a, b)`` (what ``nn.Linear`` dispatches to) that :func:`kept_matmul` keeps."""
    if op is aten.addmm.default:
        a, b = args[1], args[2]
    elif op is aten.mm.default:
        a, b = args[0], args[1]
    else:
        return False
    return kept_matmul(a.shape[-1], b.shape[-1])


def _spatial_convolution(op: Any, args: tuple) -> bool:
    """A convolution whose kernel covers more than one voxel (``aten.convolution(input, weight, ...)``)."""
    return op is aten.convolution.default and math.prod(args[1].shape[2:]) > 1


def block_policy(ctx: Any, op: Any, *args: Any, **kwargs: Any) -> CheckpointPolicy:
    """Transformer blocks: keep the attention kernel's outputs and the MLP's hidden layer."""
    if op in KEPT_ATTENTION_OPS or _kept_matmul_op(op, args):
        return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


def conv_policy(ctx: Any, op: Any, *args: Any, **kwargs: Any) -> CheckpointPolicy:
    """Convolutional parts: keep the spatial convolutions' outputs."""
    return CheckpointPolicy.MUST_SAVE if _spatial_convolution(op, args) else CheckpointPolicy.PREFER_RECOMPUTE


def selective_checkpoint(fn: Callable[..., torch.Tensor], *args: Any, policy: Callable = block_policy) -> torch.Tensor:
    """``fn(*args)``, keeping for backward only what ``policy`` saves (and ``args``); the rest is rerun."""
    # a partial, not a closure: torch.compile traces checkpoint's context_fn only in that form
    return checkpoint(fn, *args, use_reentrant=False, context_fn=partial(create_selective_checkpoint_contexts, policy))
