"""What the dynamic bias costs: D-MSA's folded attention against plain fused attention, same tokens.

For every transformer stage of a plan (window size, windows per batch, heads, head dim) this
times forward + backward of

* plain multi-head attention: ``scaled_dot_product_attention(q, k, v)``;
* D-MSA as the network runs it: ``attention_with_key_bias(q, k, v, bias)`` (the bias folded into
  ``q . k`` through one extra channel, head dim padded to a multiple of 8), plus the bias
  projection ``ReLU(X W_d)``;

and reports the ratio. Both run in fp16 on CUDA (as under nnU-Net's autocast), fp32 on CPU.
"""
from __future__ import annotations

import statistics
import time
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F

from nnunet_dyntransnet.network.attention import attention_with_key_bias

__all__ = ["stage_attention_shapes", "time_attention", "attention_bias_cost"]


def stage_attention_shapes(layout, batch: int, max_windows: int = 0) -> List[Dict[str, int]]:
    """Per transformer stage: windows (x batch), tokens per window, heads, head dim, channels."""
    shapes = []
    for s in (s for s in layout if s.kind != "conv"):  # the stem and any conv_stages attend nowhere
        tokens = s.tokens_per_attention
        windows = batch * s.tokens // tokens
        if max_windows:
            windows = min(windows, max_windows)
        shapes.append({"stage": s.index, "kind": s.kind, "windows": windows, "tokens": tokens, "heads": s.heads,
                       "head_dim": s.channels // s.heads, "channels": s.channels})
    return shapes


def time_attention(windows: int, tokens: int, heads: int, head_dim: int, device: torch.device, dynamic_bias: bool,
                   repeats: int = 5, warmup: int = 2) -> float:
    """Median seconds of forward + backward of one attention call over ``windows`` windows."""
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    channels = heads * head_dim
    q, k, v = (torch.randn(windows, heads, tokens, head_dim, device=device, dtype=dtype, requires_grad=True)
               for _ in range(3))
    x = torch.randn(windows, tokens, channels, device=device, dtype=dtype)
    w_d = torch.randn(heads, channels, device=device, dtype=dtype, requires_grad=True)
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        if dynamic_bias:
            bias = F.relu(F.linear(x, w_d)).transpose(1, 2).unsqueeze(2)  # (windows, heads, 1, tokens)
            out = attention_with_key_bias(q, k, v, bias)
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        out.float().sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def attention_bias_cost(layout, batch: int, device: torch.device, head_dims: Sequence[int] = (),
                        max_windows: int = 0, repeats: int = 5) -> List[Dict]:
    """Plain and D-MSA attention times per stage of ``layout``; also at other head dims if given."""
    rows = []
    for shape in stage_attention_shapes(layout, batch, max_windows):
        for head_dim in [shape["head_dim"], *[d for d in head_dims if d != shape["head_dim"]]]:
            heads = max(1, shape["channels"] // head_dim)
            plain = time_attention(shape["windows"], shape["tokens"], heads, head_dim, device, False, repeats)
            dynamic = time_attention(shape["windows"], shape["tokens"], heads, head_dim, device, True, repeats)
            rows.append({**shape, "heads": heads, "head_dim": head_dim, "plain_s": plain, "dmsa_s": dynamic,
                         "ratio": dynamic / plain})
    return rows
