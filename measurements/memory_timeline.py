"""Peak tensor memory of one training step, by torch's memory profiler, for networks built from one plan.

    python measurements/memory_timeline.py --patch 32x64x64 --networks PlainConvUNet DynTransNet --out peaks.json

What ``dyntransnet_benchmark`` cannot tell on CPU: the peak of the live tensors themselves,
whatever the allocator keeps, and what they are at that moment (parameters, optimizer state,
activations kept for backward, gradients, temporaries), from torch's profiler
(``profile_memory=True``) over one step after a warm-up step (forward, deep-supervised loss,
backward, AdamW: the benchmark's step). ``--torch-instance-norm`` also measures the default
DynTransNet with torch's InstanceNorm in its conv units, as before ``InstanceNormByGroups``.
Times are not measured here (the profiler slows the step).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Callable, Dict, Optional

import torch
from dynamic_network_architectures.building_blocks.helper import convert_dim_to_conv_op, get_matching_instancenorm
from torch.profiler import ProfilerActivity, profile

from nnunet_dyntransnet.benchmark.measure import deep_supervised_loss
from nnunet_dyntransnet.benchmark.networks import build_networks, default_plan
from nnunet_dyntransnet.network import DynTransNet
from nnunet_dyntransnet.network.conv_unit import ConvUnitSpec

# the columns of the profiler's timeline after its leading placeholder, in torch's order
# (torch.profiler._memory_profiler._CATEGORY_TO_INDEX)
CATEGORIES = ("parameter", "optimizer_state", "input", "temporary", "activation", "gradient", "autograd_detail",
              "unknown")


def peak_of_step(model: torch.nn.Module, patch, batch: int = 2, classes: int = 3) -> Dict[str, float]:
    """The profiled step's peak of live tensors (MiB), when it happens (fraction of the step) and what it holds."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 1, *patch)
    y = torch.randint(0, classes, (batch, *patch))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        deep_supervised_loss(model(x), y).backward()
        optimizer.step()

    step()  # the optimizer's state exists from the second step on
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        step()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "timeline.json")
        prof.export_memory_timeline(path, device="cpu")
        with open(path) as f:
            times, sizes = json.load(f)
    totals = [sum(row) for row in sizes]
    i = max(range(len(totals)), key=totals.__getitem__)
    mib = 2 ** 20
    return {"peak_mib": totals[i] / mib, "peak_at": (times[i] - times[0]) / max(times[-1] - times[0], 1),
            "at_peak_mib": {name: size / mib for name, size in zip(CATEGORIES, sizes[i][1:]) if size}}


def _with_torchs_instance_norm(plan) -> torch.nn.Module:
    """The default DynTransNet with torch's InstanceNorm, whose output is a view (as before
    :class:`~nnunet_dyntransnet.network.conv_unit.InstanceNormByGroups`); running statistics make the conv units
    keep it, and change nothing in a training step's memory."""
    conv_op = convert_dim_to_conv_op(len(plan.patch_size))
    unit = ConvUnitSpec(conv_op, norm_op=get_matching_instancenorm(conv_op),
                        norm_op_kwargs={"eps": 1e-5, "affine": True, "track_running_stats": True})
    return DynTransNet.from_plan(plan, 1, 3, True, conv_unit=unit)


def main(argv: Optional[list] = None) -> Dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--patch", default="32x64x64")
    p.add_argument("--networks", nargs="+", default=["PlainConvUNet", "DynTransNet"])
    p.add_argument("--torch-instance-norm", action="store_true")
    p.add_argument("--out")
    args = p.parse_args(argv)
    patch = [int(s) for s in args.patch.split("x")]
    plan = default_plan(patch)
    builders = build_networks(plan, 1, 3, deep_supervision=True, names=args.networks)
    runs: Dict[str, Callable[[], torch.nn.Module]] = dict(builders)
    if args.torch_instance_norm:
        runs["DynTransNet, torch's InstanceNorm"] = lambda: _with_torchs_instance_norm(plan)
    result = {"patch": patch, "batch": 2, "torch": torch.__version__, "results": {}}
    for name, build in runs.items():
        torch.manual_seed(0)
        result["results"][name] = peak_of_step(build(), patch)
        print(f"{name}: peak {result['results'][name]['peak_mib']:.0f} MiB", flush=True)
    first = result["results"][args.networks[0]]["peak_mib"]
    for r in result["results"].values():
        r["peak_ratio"] = r["peak_mib"] / first
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
