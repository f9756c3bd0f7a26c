"""One-shot GPU check for DynTransNet: correctness under CUDA, autocast and torch.compile, attention cost, step time.

Run on a CUDA machine from the repository root:

    PYTHONPATH=. python measurements/gpu_check.py OUT_DIR

Writes ``gpu_check.json`` (checks and the attention micro-benchmark) into OUT_DIR, section by
section, so a run cut short still leaves what it measured. ``measurements/run_gpu.sh`` runs it
first, then ``dyntransnet_benchmark``.
"""
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from nnunet_dyntransnet import benchmark
from nnunet_dyntransnet.network.attention import DynamicBiasAttention, attention_with_key_bias
from nnunet_dyntransnet.network import DynTransNet

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
OUT.mkdir(parents=True, exist_ok=True)
DEV = torch.device("cuda")
report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}


def save():
    (OUT / "gpu_check.json").write_text(json.dumps(report, indent=2))


def rel_err(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def check_attention_paths():
    torch.manual_seed(0)
    fused = DynamicBiasAttention(64, 2).to(DEV)
    with torch.no_grad():
        fused.bias_proj.weight.normal_(0, 0.3)
    ref = DynamicBiasAttention(64, 2, fused_attn=False).to(DEV)
    ref.load_state_dict(fused.state_dict())
    x = torch.randn(8, 512, 64, device=DEV)
    out = {"fp32_rel_err": rel_err(fused(x), ref(x))}
    for dtype in (torch.float16, torch.bfloat16):
        with torch.autocast("cuda", dtype=dtype):
            a, b = fused(x), ref(x)
        out[f"{dtype}_rel_err"] = rel_err(a, b)
        out[f"{dtype}_finite"] = bool(torch.isfinite(a).all())
    report["attention_paths"] = out


def check_network_autocast_and_compile():
    torch.manual_seed(0)
    plan = benchmark.default_plan([64, 64, 64])
    net = DynTransNet.from_plan(plan, 1, 3, True).to(DEV)
    x = torch.randn(2, 1, 64, 64, 64, device=DEV)
    res = {}
    for dtype in (torch.float16, torch.bfloat16):
        net.zero_grad()
        with torch.autocast("cuda", dtype=dtype):
            outs = net(x)
            loss = sum(o.float().square().mean() for o in outs)
        loss.backward()
        res[f"{dtype}_outputs_finite"] = all(bool(torch.isfinite(o).all()) for o in outs)
        res[f"{dtype}_grads_finite"] = all(bool(torch.isfinite(p.grad).all()) for p in net.parameters())
    explain = torch._dynamo.explain(net)(x)
    res["graph_breaks"] = explain.graph_break_count
    res["graph_count"] = explain.graph_count
    res["break_reasons"] = [str(b.reason)[:300] for b in explain.break_reasons][:5]
    torch._dynamo.reset()
    compiled = torch.compile(net)
    net.eval()
    with torch.no_grad():
        eager = net(x)
        t0 = time.perf_counter()
        comp = compiled(x)
        res["compile_first_call_s"] = time.perf_counter() - t0
    res["compiled_vs_eager_rel_err"] = max(rel_err(c, e) for c, e in zip(comp, eager))
    # recompiles: a second call with the same shape must not recompile
    with torch.no_grad():
        compiled(x)
    report["network"] = res


def attention_microbench():
    """fwd+bwd of the attention core at the token counts of a LiTS-like plan (128^3, batch 2)."""
    cases = {  # name: (batch*windows, heads, tokens, head_dim)
        "stage1_local_512": (1024, 2, 512, 32),
        "stage2_local_512": (128, 4, 512, 32),
        "stage3_global_4096": (2, 8, 4096, 32),
        "stage4_global_512": (2, 10, 512, 32),
    }

    def plain(q, k, v, b):
        return F.scaled_dot_product_attention(q, k, v)

    def mask(q, k, v, b):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=b)

    def folded(q, k, v, b):  # the network's fused path
        return attention_with_key_bias(q, k, v, b)

    res = {}
    for name, (bw, h, n, d) in cases.items():
        row = {}
        for dtype in (torch.bfloat16,):
            q, k, v = (torch.randn(bw, h, n, d, device=DEV, dtype=dtype, requires_grad=True) for _ in range(3))
            b = torch.rand(bw, h, 1, n, device=DEV, dtype=dtype, requires_grad=True)
            for fname, fn in (("plain", plain), ("mask", mask), ("folded", folded)):
                for _ in range(3):
                    fn(q, k, v, b).sum().backward()
                times = []
                for _ in range(10):
                    torch.cuda.synchronize()
                    t = time.perf_counter()
                    fn(q, k, v, b).sum().backward()
                    torch.cuda.synchronize()
                    times.append(time.perf_counter() - t)
                row[fname + "_ms"] = statistics.median(times) * 1e3
            row["mask_over_plain"] = row["mask_ms"] / row["plain_ms"]
            row["folded_over_plain"] = row["folded_ms"] / row["plain_ms"]
        res[name] = row
    report["attention_microbench_bf16_fwd_bwd"] = res


for section in (check_attention_paths, check_network_autocast_and_compile, attention_microbench):
    t = time.perf_counter()
    try:
        section()
    except Exception as e:  # keep going: later sections still tell something
        report[section.__name__ + "_error"] = repr(e)[:2000]
    report[section.__name__ + "_s"] = time.perf_counter() - t
    save()
    print(section.__name__, "done", flush=True)

# the network comparison (training step, inference, memory) is measurements/run_gpu.sh's next step
