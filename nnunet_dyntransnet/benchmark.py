"""Training-step benchmark: DynTransNet against nnU-Net's default U-Net built from the same plan.

Every network is built from one plan (nnU-Net's default topology for the patch, or a real
``nnUNetPlans.json``) and timed in the same process, so the ratios compare like with like:

    dyntransnet_benchmark --patch 32x64x64 --device cpu
    dyntransnet_benchmark --plan nnUNetPlans.json -c 3d_fullres --device cuda --out result.json

A training step is forward, deep-supervised cross-entropy, backward and an AdamW step (the
same optimizer for every network, so the step measures the networks); on CUDA it runs
under fp16 autocast with a grad scaler, as nnU-Net trains.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from types import SimpleNamespace
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

__all__ = ["default_plan", "plan_from_file", "build_networks", "time_train_step", "main"]


def default_plan(patch_size: Sequence[int], spacing: Optional[Sequence[float]] = None) -> SimpleNamespace:
    """A configuration like nnU-Net's default ExperimentPlanner makes for this patch and spacing.

    Topology (strides, kernels, stage count) comes from nnU-Net's own ``get_pool_and_conv_props``;
    widths double from 32 up to 320 (3D) or 512 (2D); two convs per stage.
    """
    from nnunetv2.experiment_planning.experiment_planners.network_topology import get_pool_and_conv_props

    spacing = list(spacing or [1.0] * len(patch_size))
    _, strides, kernels, patch, _ = get_pool_and_conv_props(spacing, list(patch_size), 4, 999999)
    if list(patch) != list(patch_size):
        raise ValueError(f"patch {list(patch_size)} is not one nnU-Net would plan; the nearest valid one is {list(patch)}")
    n = len(strides)
    cap = 320 if len(patch_size) == 3 else 512
    dim = len(patch_size)
    arch = dict(
        n_stages=n, features_per_stage=[min(32 * 2 ** i, cap) for i in range(n)],
        conv_op=f"torch.nn.modules.conv.Conv{dim}d", kernel_sizes=kernels, strides=strides,
        n_conv_per_stage=[2] * n, n_conv_per_stage_decoder=[2] * (n - 1), conv_bias=True,
        norm_op=f"torch.nn.modules.instancenorm.InstanceNorm{dim}d", norm_op_kwargs={"eps": 1e-5, "affine": True},
        dropout_op=None, dropout_op_kwargs=None, nonlin="torch.nn.LeakyReLU", nonlin_kwargs={"inplace": True},
    )
    return SimpleNamespace(
        patch_size=list(patch_size), batch_size=2, network_arch_init_kwargs=arch,
        network_arch_class_name="dynamic_network_architectures.architectures.unet.PlainConvUNet",
        network_arch_init_kwargs_req_import=("conv_op", "norm_op", "dropout_op", "nonlin"),
    )


def plan_from_file(path: str, configuration: str):
    """The ``ConfigurationManager`` of one configuration of an ``nnUNetPlans.json``."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    return PlansManager(path).get_configuration(configuration)


def build_networks(plan, in_channels: int, num_classes: int) -> Dict[str, Callable[[], nn.Module]]:
    """Builders, by name, for every network compared; each built from the same plan."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    from nnunet_dyntransnet.network import DynTransNet

    def plain() -> nn.Module:
        return get_network_from_plans(
            plan.network_arch_class_name, plan.network_arch_init_kwargs, plan.network_arch_init_kwargs_req_import,
            in_channels, num_classes, allow_init=True, deep_supervision=True,
        )

    return {
        "PlainConvUNet (nnU-Net default)": plain,
        "DynTransNet": lambda: DynTransNet.from_plan(plan, in_channels, num_classes, True),
        "DynTransNet, plain MSA (no dynamic bias)": lambda: DynTransNet.from_plan(
            plan, in_channels, num_classes, True, dynamic_bias=False),
    }


def _loss(outputs, target: torch.Tensor) -> torch.Tensor:
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    total = 0.0
    for out in outputs:
        t = nn.functional.interpolate(target[:, None].float(), size=out.shape[2:], mode="nearest")[:, 0].long()
        total = total + nn.functional.cross_entropy(out.float(), t)
    return total


def time_train_step(model: nn.Module, batch: int, in_channels: int, num_classes: int, patch: Sequence[int],
                    device: torch.device, repeats: int, warmup: int) -> Dict[str, float]:
    """Median seconds of a full training step, and peak CUDA memory (GiB) where it applies."""
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cuda = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if cuda else None
    x = torch.randn(batch, in_channels, *patch, device=device)
    y = torch.randint(0, num_classes, (batch, *patch), device=device)
    times: List[float] = []
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(warmup + repeats):
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, enabled=cuda):
            loss = _loss(model(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite loss {loss.item()} in step {i}")
        if cuda:
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    result = {"train_step_s": statistics.median(times)}
    if cuda:
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    return result


def forward_flops(model: nn.Module, in_channels: int, patch: Sequence[int]) -> int:
    """Forward FLOPs for one sample (torch's flop counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(1, in_channels, *patch, device=next(model.parameters()).device)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def _parse_patch(text: str) -> List[int]:
    try:
        return [int(v) for v in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--patch must look like 32x64x64, got {text!r}") from None


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    parser = argparse.ArgumentParser(prog="dyntransnet_benchmark", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--patch", type=_parse_patch, default=[32, 64, 64], help="patch size, e.g. 128x128x128")
    source.add_argument("--plan", help="an nnUNetPlans.json to take the configuration from (with -c)")
    parser.add_argument("-c", "--configuration", default="3d_fullres")
    parser.add_argument("--spacing", type=float, nargs="+", help="voxel spacing for --patch (default isotropic)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="torch.compile every network (as nnU-Net does on CUDA)")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)

    plan = plan_from_file(args.plan, args.configuration) if args.plan else default_plan(args.patch, args.spacing)
    patch = list(plan.patch_size)
    device = torch.device(args.device)
    rows = []
    for name, build in build_networks(plan, args.in_channels, args.classes).items():
        torch.manual_seed(0)
        model = build()
        row = {"network": name, "parameters": sum(p.numel() for p in model.parameters())}
        row["forward_gflops_per_sample"] = forward_flops(model.to(device), args.in_channels, patch) / 1e9
        if args.compile:
            model = torch.compile(model)
        row.update(time_train_step(model, args.batch, args.in_channels, args.classes, patch, device,
                                   args.repeats, args.warmup))
        rows.append(row)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    base = rows[0]
    for row in rows:
        row["train_step_ratio"] = row["train_step_s"] / base["train_step_s"]
        if "peak_memory_gib" in row:
            row["peak_memory_ratio"] = row["peak_memory_gib"] / base["peak_memory_gib"]
    result = {
        "patch_size": patch, "batch_size": args.batch, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch": torch.__version__, "compiled": args.compile, "strides": plan.network_arch_init_kwargs["strides"],
        "features_per_stage": plan.network_arch_init_kwargs["features_per_stage"], "results": rows,
    }
    print(format_table(result))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return result


def format_table(result: Dict) -> str:
    """Markdown table of a benchmark result, ratios against the first (baseline) row."""
    has_mem = "peak_memory_gib" in result["results"][0]
    head = "| network | params (M) | fwd GFLOP/sample | train step (s) | step ratio |"
    head += " peak mem (GiB) | mem ratio |" if has_mem else ""
    lines = [f"patch {'x'.join(map(str, result['patch_size']))}, batch {result['batch_size']}, "
             f"{result['device']} ({result['device_name']}), torch {result['torch']}"
             f"{', torch.compile' if result.get('compiled') else ''}", "", head,
             "|" + "---|" * (head.count("|") - 1)]
    for r in result["results"]:
        line = (f"| {r['network']} | {r['parameters'] / 1e6:.2f} | {r['forward_gflops_per_sample']:.1f} | "
                f"{r['train_step_s']:.3f} | {r['train_step_ratio']:.2f} |")
        if has_mem:
            line += f" {r['peak_memory_gib']:.2f} | {r['peak_memory_ratio']:.2f} |"
        lines.append(line)
    return "\n".join(lines)


def entry(argv: Optional[Sequence[str]] = None) -> int:
    """Console command ``dyntransnet_benchmark``."""
    main(argv)
    return 0


if __name__ == "__main__":
    main()
