#!/usr/bin/env bash
# All GPU measurements of issue 5 in one call of under 8 minutes (on an H100/H200), from the repository root:
#
#   bash benchmarks/run_gpu.sh [OUT_DIR]        # default benchmarks/results/gpu_<date>
#
# 1. gpu_check.py: attention paths under fp32/fp16/bf16, autocast and torch.compile on the network
#    (graph breaks), and plain / float-mask / folded-bias attention at a LiTS-like plan's token counts;
# 2. dyntransnet_benchmark at nnU-Net's LiTS plan (128^3 at 1 x 0.77 x 0.77 mm): PlainConvUNet, ResEnc M,
#    Primus-S, DynTransNet and its plain-MSA ablation; training step (fp16 autocast), sliding-window
#    inference of a 320x532x532 case (a 512x512x128 CT at 0.8 x 0.8 x 2.5 mm, resampled), peak memory,
#    the dynamic bias's cost per stage at head dims 32 and 64, and the memory model at 3 patch sizes;
# 3. the same with test-time mirroring, for PlainConvUNet and DynTransNet only (8x the work);
# 4. the training step under torch.compile, PlainConvUNet and DynTransNet.
# Each step has its own time limit and writes its JSON (and the printed table as .md) as it finishes.
set -uo pipefail
OUT=${1:-benchmarks/results/gpu_$(date +%F)}
mkdir -p "$OUT"
export PYTHONPATH="${PYTHONPATH:-}:$PWD"
BENCH=(python3 -m nnunet_dyntransnet.benchmark --patch 128x128x128 --spacing 1 0.7676 0.7676 --device cuda)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
timeout 90 python3 benchmarks/gpu_check.py "$OUT" > "$OUT/gpu_check.log" 2>&1
timeout 210 "${BENCH[@]}" --no-mirroring --attention --memory-model 64x64x64 96x96x96 128x128x128 \
    --out "$OUT/benchmark_128.json" > "$OUT/benchmark_128.md" 2>&1
timeout 120 "${BENCH[@]}" --networks PlainConvUNet DynTransNet --repeats 1 \
    --out "$OUT/benchmark_128_mirrored.json" > "$OUT/benchmark_128_mirrored.md" 2>&1
timeout 60 "${BENCH[@]}" --networks PlainConvUNet DynTransNet --compile --no-inference --warmup 3 \
    --out "$OUT/benchmark_128_compiled.json" > "$OUT/benchmark_128_compiled.md" 2>&1
ls -l "$OUT"
