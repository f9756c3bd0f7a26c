"""Second GPU probe: where DynTransNet's step time goes, and torch.compile across a batch-size change.

    PYTHONPATH=. python measurements/gpu_profile.py OUT_DIR
"""
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from nnunet_dyntransnet import benchmark
from nnunet_dyntransnet.benchmark import measure
from nnunet_dyntransnet.network import DynTransNet

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
DEV = torch.device("cuda")
report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}


def save():
    (OUT / "gpu_profile.json").write_text(json.dumps(report, indent=2))


def step(net, x, y, opt, scaler):
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cuda"):
        loss = measure.deep_supervised_loss(net(x), y)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()


def timed(net, patch=(128, 128, 128), reps=3):
    net = net.to(DEV).train()
    opt = torch.optim.AdamW(net.parameters(), 1e-4)
    scaler = torch.amp.GradScaler("cuda")
    x = torch.randn(2, 1, *patch, device=DEV)
    y = torch.randint(0, 3, (2, *patch), device=DEV)
    step(net, x, y, opt, scaler)
    ts = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t = time.perf_counter()
        step(net, x, y, opt, scaler)
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), (net, x, y, opt, scaler)


plan = benchmark.default_plan([128, 128, 128])
# 1. profile one eager step
t, state = timed(DynTransNet.from_plan(plan, 1, 3))
report["eager_step_s"] = t
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
    step(*state)
    torch.cuda.synchronize()
rows = sorted(prof.key_averages(), key=lambda e: -e.self_device_time_total)[:18]
report["top_cuda_kernels_ms"] = [[e.key[:90], round(e.self_device_time_total / 1e3, 2), e.count] for e in rows]
del state
save()

# 2. the plain-MSA ablation: what the dynamic bias costs in the whole step
report["step_msa_s"] = timed(DynTransNet.from_plan(plan, 1, 3, attention="msa"))[0]
save()

# 3. torch.compile: train at batch 2, then batch-1 inference (nnU-Net's final validation)
small = benchmark.default_plan([32, 64, 64])
for automatic_dynamic in (True, False):
    torch._dynamo.reset()
    torch._dynamo.config.automatic_dynamic_shapes = automatic_dynamic
    key = f"compile_batch2_then_1_automatic_dynamic_{automatic_dynamic}"
    try:
        net = torch.compile(DynTransNet.from_plan(small, 1, 3).to(DEV))
        opt = torch.optim.AdamW(net.parameters(), 1e-4)
        scaler = torch.amp.GradScaler("cuda")
        x = torch.randn(2, 1, 32, 64, 64, device=DEV)
        y = torch.randint(0, 3, (2, 32, 64, 64), device=DEV)
        step(net, x, y, opt, scaler)
        net.eval()
        with torch.no_grad(), torch.autocast("cuda"):
            out = net(torch.randn(1, 1, 32, 64, 64, device=DEV))
        report[key] = "ok, finite" if all(torch.isfinite(o).all() for o in out) else "non-finite"
    except Exception as e:
        report[key] = repr(e)[:600]
    save()
print(json.dumps(report, indent=1))
