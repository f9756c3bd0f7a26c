"""Memory traffic of one training step, counted operation by operation on the meta device (no memory, no time).

On a large GPU both networks run far from peak FLOP/s (the H200 runs in ``measurements/results``:
4% and 7% MFU), so a step's time follows the bytes its memory-bound operations move: norms,
activations, residual additions, permutes and copies, concatenations, softmax, the optimizer.
This counts, for one training step (forward, deep-supervised cross-entropy, backward), every
dispatched operation's bytes read (its tensor inputs) and written (its outputs), apart for

- ``matmul``: matmuls and convolutions, forward and backward, and the fused attention kernels,
  with their FLOPs (torch's flop counter), whose time the tensor cores decide;
- ``other``: everything else, whose time the memory bandwidth decides.

Views (``view``, ``permute``, ``expand``, ...) move nothing and count nothing; an operation that
writes in place counts its output once. On the meta device ``scaled_dot_product_attention``
would take its unfused path (a tokens x tokens matrix through softmax); it is counted as the
fused kernel that a GPU runs (flash attention: inputs, output and log-sum-exp), as
:func:`_fused_attention` routes it. The figure is a steering aid, not a timing: it ignores
caches, kernel fusion (torch.compile fuses chains of elementwise operations into one pass) and
launch overhead. Element sizes are the tensors' (fp32 here; autocast halves most of them for
both networks alike).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from nnunet_dyntransnet.benchmark.measure import deep_supervised_loss

__all__ = ["step_traffic"]

aten = torch.ops.aten
_MATMUL = {"mm", "addmm", "bmm", "baddbmm", "convolution", "convolution_backward", "_convolution"}
_VIEWS = {"view", "_unsafe_view", "reshape", "expand", "permute", "transpose", "t", "slice", "select", "as_strided",
          "unsqueeze", "squeeze", "alias", "detach", "_reshape_alias", "unbind", "split", "split_with_sizes",
          "chunk", "movedim", "lift_fresh", "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"}


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def _flatten(value) -> list:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flatten(v)]
    return [value]


class _Traffic(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.bytes = {"matmul": 0, "other": 0}
        self.by_op: Dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__.rstrip("_")
        if name in _VIEWS:
            return out
        kind = "matmul" if name in _MATMUL or name.startswith("_scaled_dot_product") or name.startswith("_flash") \
            else "other"
        inputs = _bytes(_flatten(list(args) + list((kwargs or {}).values())))
        written = _bytes(_flatten(out))
        moved = inputs + (0 if func.overloadpacket.__name__.endswith("_") else written)
        self.bytes[kind] += moved
        if kind == "other":
            self.by_op[name] = self.by_op.get(name, 0) + moved
        return out


@contextmanager
def _fused_attention() -> Iterator[None]:
    """While open, ``F.scaled_dot_product_attention`` without a mask runs the fused flash kernel (which has a meta
    implementation), so that attention is counted as the GPU runs it."""
    original = F.scaled_dot_product_attention

    def fused(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kwargs):
        if attn_mask is not None or kwargs:
            return original(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale,
                            **kwargs)
        return aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, dropout_p, is_causal, scale=scale)[0]

    F.scaled_dot_product_attention = fused
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def step_traffic(model: nn.Module, batch: int, in_channels: int, num_classes: int, patch: Sequence[int]) -> Dict[str, float]:
    """Bytes moved and FLOPs of one training step of ``model`` (built on, or moved to, the meta device).

    Returns ``matmul_bytes``, ``other_bytes`` (the memory-bound operations'), ``flops`` (matmuls, convolutions
    and attention, forward and backward), ``other_bytes_per_flop`` and ``top_other_ops`` (the eight operations
    that move the most of ``other_bytes``, with their bytes).
    """
    model = model.to("meta").train()
    x = torch.empty(batch, in_channels, *patch, device="meta")
    y = torch.zeros(batch, *patch, dtype=torch.long, device="meta")
    traffic, flops = _Traffic(), FlopCounterMode(display=False)
    with _fused_attention(), traffic:
        deep_supervised_loss(model(x), y).backward()
    with flops:  # torch's flop counter knows the unfused attention's matmuls, not the CPU flash kernel
        deep_supervised_loss(model(x), y).backward()
    total = flops.get_total_flops()
    top = sorted(traffic.by_op.items(), key=lambda kv: -kv[1])[:8]
    return {"matmul_bytes": float(traffic.bytes["matmul"]), "other_bytes": float(traffic.bytes["other"]),
            "flops": float(total), "other_bytes_per_flop": traffic.bytes["other"] / total if total else None,
            "top_other_ops": {name: float(b) for name, b in top}}
