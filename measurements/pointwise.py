"""A 1x1 convolution as torch's convolution and as :func:`~nnunet_dyntransnet.network.pointwise.pointwise_conv`
(a batched matrix product), forward and backward, at the sizes of FM-M and the heads in the benchmark's plans.

    python measurements/pointwise.py --out pointwise.json

Median of 7 timed repeats after 2 warm-up ones, alternating between the two; the gradients are checked equal.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

from nnunet_dyntransnet.network.pointwise import pointwise_conv

# (in channels, out channels, spatial): FM-M's decoder-side convolution (C -> 1.5 C) at full resolution of the
# comparison's narrow plan (C = 8) and of the 32x64x64 default plan (C = 32), one level down (C = 64), and a head
CASES = [(8, 12, (32, 64, 64)), (32, 48, (32, 64, 64)), (64, 96, (16, 32, 32)), (8, 3, (32, 64, 64))]


def measure(c_in: int, c_out: int, spatial, batch: int = 2, repeats: int = 7) -> Dict:
    torch.manual_seed(0)
    x = torch.randn(batch, c_in, *spatial, requires_grad=True)
    w = torch.randn(c_out, c_in, *(1,) * len(spatial), requires_grad=True)
    b = torch.randn(c_out, requires_grad=True)
    g = torch.randn(batch, c_out, *spatial)
    conv = getattr(F, f"conv{len(spatial)}d")
    ways = {"convolution": lambda: torch.autograd.grad(conv(x, w, b), (x, w, b), g),
            "pointwise_conv": lambda: torch.autograd.grad(pointwise_conv(x, w, b), (x, w, b), g)}
    grads = {name: run() for name, run in ways.items()}
    equal = all(torch.allclose(p, q, rtol=1e-3, atol=1e-2) for p, q in zip(*grads.values()))
    times: Dict[str, List[float]] = {name: [] for name in ways}
    for i in range(repeats + 2):
        for name, run in ways.items():
            start = time.perf_counter()
            run()
            if i >= 2:
                times[name].append(time.perf_counter() - start)
    ms = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    return {"in": c_in, "out": c_out, "spatial": list(spatial), "batch": batch, "gradients_equal": equal,
            "forward_backward_ms": ms, "ratio": ms["pointwise_conv"] / ms["convolution"]}


def main(argv: Optional[list] = None) -> Dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out")
    args = p.parse_args(argv)
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cases": []}
    for case in CASES:
        r = measure(*case)
        result["cases"].append(r)
        print(f"{r['in']} -> {r['out']} on {'x'.join(map(str, r['spatial']))}: convolution "
              f"{r['forward_backward_ms']['convolution']:.1f} ms, pointwise_conv {r['forward_backward_ms']['pointwise_conv']:.1f} ms"
              f" ({r['ratio']:.2f}x), gradients equal: {r['gradients_equal']}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    sys.exit(0 if all(c["gradients_equal"] for c in main()["cases"]) else 1)
