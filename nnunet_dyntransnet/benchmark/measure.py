"""Measurements of one network: training step, sliding-window inference, FLOPs, peak memory.

Each (network, measurement) pair runs in a child process of its own (:func:`run_in_child`),
so that the peak memory is that network's alone: on CUDA ``max_memory_allocated``, on CPU
the child's peak resident set size (``VmHWM``), with the resident size before the network
was built also recorded (the interpreter, torch and nnU-Net), so that the difference is the
network's.

On CPU, glibc's ``malloc`` keeps freed blocks below its mmap threshold in its heap, and it raises
that threshold (up to 32 MiB) each time a larger mmapped block is freed; after a few steps most
activations live in a heap that is never given back, and the peak RSS then measures how the
allocation history fragmented it as much as what the network holds (the two networks' peak ratio
differs widely between glibc's defaults and a fixed threshold, and the latter agrees with torch's
memory profiler: docs/speed_and_memory.md, "Peak memory"). :data:`LIVE_MEMORY_ENV` fixes the threshold at 128 KiB
so that every activation is unmapped when freed and the peak RSS follows the live tensors, as
``max_memory_allocated`` does on CUDA; the CPU benchmark measures the peak in a child of its own
with it (the timing child keeps glibc's defaults, whose peak is reported beside it).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

__all__ = ["LIVE_MEMORY_ENV", "deep_supervised_loss", "time_train_step", "time_train_steps_interleaved",
           "time_inference", "forward_flops",
           "run_in_child", "rss_gib"]

# glibc tunables (read when a process starts): blocks of 128 KiB or more are mmapped and unmapped when freed
LIVE_MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}


def rss_gib(peak: bool) -> float:
    """This process's resident memory now (``VmRSS``) or at its peak (``VmHWM``), in GiB, from /proc/self/status.

    Not ``getrusage``'s ``ru_maxrss``: Linux carries that over ``exec`` from the process that
    spawned this one, so a child started by a large parent (a test run) reported the parent's size.
    """
    key = "VmHWM:" if peak else "VmRSS:"
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith(key))
    return kib / 2 ** 20


def deep_supervised_loss(outputs, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over the outputs (deep supervision), the target resized to each."""
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    total = 0.0
    for out in outputs:
        t = nn.functional.interpolate(target[:, None].float(), size=out.shape[2:], mode="nearest")[:, 0].long()
        total = total + nn.functional.cross_entropy(out.float(), t)
    return total


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_step(model: nn.Module, batch: int, in_channels: int, num_classes: int, patch: Sequence[int],
                device: torch.device, dtype: str):
    """A function that runs one timed training step of ``model`` (its own optimizer and batch) and returns seconds."""
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cuda = device.type == "cuda"
    autocast_dtype = torch.bfloat16 if dtype == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if cuda and dtype == "fp16" else None
    x = torch.randn(batch, in_channels, *patch, device=device)
    y = torch.randint(0, num_classes, (batch, *patch), device=device)

    def step() -> float:
        _sync(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=cuda):
            loss = deep_supervised_loss(model(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite loss {loss.item()}")
        _sync(device)
        return time.perf_counter() - start

    return step


def time_train_step(model: nn.Module, batch: int, in_channels: int, num_classes: int, patch: Sequence[int],
                    device: torch.device, repeats: int, warmup: int, dtype: str = "fp16") -> Dict[str, float]:
    """Median seconds of a training step: forward, deep-supervised cross-entropy, backward, AdamW step.

    On CUDA under autocast: fp16 with a grad scaler, as nnU-Net trains, or bf16. The same
    optimizer for every network, so the step measures the networks. A non-finite loss (a
    network unstable under mixed precision) is an error.
    """
    return {"train_step_s": statistics.median(
        time_train_steps_interleaved({"model": model}, batch, in_channels, num_classes, patch, device, repeats, warmup,
                                     dtype)["model"])}


def time_train_steps_interleaved(models: Dict[str, nn.Module], batch: int, in_channels: int, num_classes: int,
                                 patch: Sequence[int], device: torch.device, repeats: int, warmup: int,
                                 dtype: str = "fp16") -> Dict[str, List[float]]:
    """Seconds of each timed training step of every model, the models taking turns step by step (A, B, A, B, ...).

    A load on the machine that comes and goes then falls on both networks of a pair of steps alike, so the ratio
    of adjacent steps measures the networks, where networks measured one after the other (even alternating by
    round) measured the load as well. Each step as :func:`time_train_step`.
    """
    steps = {name: _train_step(m, batch, in_channels, num_classes, patch, device, dtype) for name, m in models.items()}
    times: Dict[str, List[float]] = {name: [] for name in models}
    for i in range(warmup + repeats):
        for name, step in steps.items():
            seconds = step()
            if i >= warmup:
                times[name].append(seconds)
    return times


def time_inference(model: nn.Module, plan, in_channels: int, num_classes: int, case_shape: Sequence[int],
                   device: torch.device, mirroring: bool, repeats: int = 1) -> Dict[str, float]:
    """Seconds for nnU-Net's sliding-window prediction of one preprocessed case of ``case_shape`` voxels.

    Uses ``nnUNetPredictor.predict_sliding_window_return_logits`` (Gaussian weighting, tile step
    0.5, test-time mirroring over all axes when ``mirroring``), nnU-Net's own code for the part
    of inference that depends on the network; reading, resampling and export do not. The
    predictor gets the network and the patch directly, so no trained model folder is needed.
    """
    from types import SimpleNamespace

    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirroring,
                                perform_everything_on_device=device.type == "cuda", device=device, verbose=False,
                                verbose_preprocessing=False, allow_tqdm=False)
    predictor.network = model.to(device).eval()
    predictor.configuration_manager = SimpleNamespace(patch_size=list(plan.patch_size))
    predictor.label_manager = SimpleNamespace(num_segmentation_heads=num_classes)
    predictor.allowed_mirroring_axes = tuple(range(len(plan.patch_size)))
    image = torch.randn(in_channels, *case_shape)
    # one patch first, so that kernel selection and allocator warm-up are not timed
    model(torch.randn(1, in_channels, *plan.patch_size, device=device))
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        logits = predictor.predict_sliding_window_return_logits(image)
        _sync(device)
        times.append(time.perf_counter() - start)
        if not torch.isfinite(logits).all():
            raise RuntimeError("non-finite logits in sliding-window inference")
    return {"inference_s": statistics.median(times)}


def forward_flops(model: nn.Module, in_channels: int, patch: Sequence[int]) -> int:
    """Forward FLOPs for one sample (torch's flop counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(1, in_channels, *patch, device=next(model.parameters()).device)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def run_in_child(task: dict, env: Optional[Dict[str, str]] = None) -> dict:
    """Run :func:`nnunet_dyntransnet.benchmark.child.run` on ``task`` in a fresh interpreter, with ``env`` added to
    this process's environment; its JSON result."""
    from nnunet_dyntransnet.utilities import processes

    # under the supervisor: a benchmark stopped by Ctrl-C or SIGTERM stops its measuring child too
    proc = processes.run([sys.executable, "-m", "nnunet_dyntransnet.benchmark.child", json.dumps(task)],
                         env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark child for {task.get('network')} / {task.get('measure')} failed "
                           f"(exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return json.loads(lines[-1])
