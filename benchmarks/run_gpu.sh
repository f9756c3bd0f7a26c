#!/usr/bin/env bash
# Every GPU measurement in one call of under 9 minutes (on an H100/H200), from the repository root:
#
#   bash benchmarks/run_gpu.sh [OUT_DIR]        # default benchmarks/results/gpu_<date>
#
# 1. gpu_check.py: attention paths under fp32/fp16/bf16, autocast and torch.compile on the network
#    (graph breaks), and plain / float-mask / folded-bias attention at a LiTS-like plan's token counts;
# 2. dyntransnet_benchmark at nnU-Net's LiTS plan (128^3 at 1 x 0.77 x 0.77 mm), bf16 autocast:
#    PlainConvUNet, ResEnc M, Primus-S, DynTransNet, its plain-MSA ablation and its checkpointed variant;
#    training step with model FLOP utilisation (against 989 TFLOP/s, the H100/H200 SXM dense bf16 peak),
#    sliding-window inference of a 320x532x532 case (a 512x512x128 CT at 0.8 x 0.8 x 2.5 mm,
#    resampled), peak memory, the dynamic bias's cost per stage at head dims 32 and 64, and the memory
#    model at 3 patch sizes;
# 3. the paper's 3D baselines (MONAI SegResNet, DynUNet, UNETR, SwinUNETR, VNet, Attention U-Net) on the
#    same plan: training step (a non-finite loss under mixed precision is reported as an error), then
#    inference in a separate step;
# 4. the training step under torch.compile, PlainConvUNet and DynTransNet.
# Each step has its own time limit and writes its JSON (and the printed table as .md) as it finishes.
set -uo pipefail
OUT=${1:-benchmarks/results/gpu_$(date +%F)}
mkdir -p "$OUT"
export PYTHONPATH="${PYTHONPATH:-}:$PWD"
BENCH=(python3 -m nnunet_dyntransnet.benchmark --patch 128x128x128 --spacing 1 0.7676 0.7676 --device cuda
       --dtype bf16 --peak-tflops 989)
BASELINES=(SegResNet DynUNet UNETR SwinUNETR VNet "Attention U-Net")
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
timeout 45 python3 benchmarks/gpu_check.py "$OUT" > "$OUT/gpu_check.log" 2>&1
timeout 200 "${BENCH[@]}" --no-mirroring --attention --memory-model 64x64x64 96x96x96 128x128x128 \
    --out "$OUT/benchmark_128.json" > "$OUT/benchmark_128.md" 2>&1
timeout 120 "${BENCH[@]}" --networks PlainConvUNet "${BASELINES[@]}" --no-inference \
    --out "$OUT/baselines_128_train.json" > "$OUT/baselines_128_train.md" 2>&1
timeout 120 "${BENCH[@]}" --networks PlainConvUNet "${BASELINES[@]}" --no-mirroring --repeats 1 --warmup 0 \
    --out "$OUT/baselines_128.json" > "$OUT/baselines_128.md" 2>&1
timeout 60 "${BENCH[@]}" --networks PlainConvUNet DynTransNet --compile --no-inference --warmup 3 \
    --out "$OUT/benchmark_128_compiled.json" > "$OUT/benchmark_128_compiled.md" 2>&1
ls -l "$OUT"
