#!/usr/bin/env bash
# Every GPU measurement in one call (its steps' time limits add to 530 s; on an H100/H200), from the
# repository root:
#
#   bash measurements/run_gpu.sh [OUT_DIR]        # default measurements/results/gpu_<date>
#
# Sized from the H200 run of 2026-11-28: one benchmark child (a network and one measurement) costs
# 10-20 s besides its work (interpreter, CUDA context, cuDNN autotuning); a sliding-window inference of
# the 320x532x532 case about 30 s more. Every step writes its JSON after each network, so a step cut
# short by its time limit keeps what it measured ("complete": false).
#
# 1. gpu_check.py: attention paths under fp32/fp16/bf16, autocast and torch.compile on the network
#    (graph breaks), and plain / float-mask / folded-bias attention at a LiTS-like plan's token counts;
# 2. training step at nnU-Net's LiTS plan (128^3 at 1 x 0.77 x 0.77 mm), bf16 autocast, with model FLOP
#    utilisation against 989 TFLOP/s (H100/H200 SXM dense bf16), two rounds alternating between the
#    networks: PlainConvUNet, DynTransNet (the defaults: selective checkpointing in the transformer and the
#    decoder), the defaults without selective checkpointing, and the defaults with overlapping patch embeddings
#    (patch_embedding="overlapping": 1.27x the default's time per fold on the 2-core CPU, 1.02x its FLOPs; what
#    they cost on a GPU decides whether they can be the default; the 0.1 network's row is in
#    results/h200_2026-11-28); peak memory; the memory-bound traffic; the dynamic bias's cost per attention stage
#    at head dims 32 and 64;
# 3. the paper's 3D baselines (MONAI SegResNet, DynUNet, UNETR, SwinUNETR, VNet, Attention U-Net),
#    training step on the same plan (a non-finite loss under mixed precision is reported as an error);
# 4. nnU-Net's sliding-window inference of a 320x532x532 case (a 512x512x128 CT at 0.8 x 0.8 x 2.5 mm,
#    resampled) for PlainConvUNet, DynTransNet, ResEnc M and Primus-S.
set -uo pipefail
OUT=${1:-measurements/results/gpu_$(date +%F)}
mkdir -p "$OUT"
export PYTHONPATH="${PYTHONPATH:-}:$PWD"
BENCH=(python3 -m nnunet_dyntransnet.benchmark --patch 128x128x128 --spacing 1 0.7676 0.7676 --device cuda
       --dtype bf16 --peak-tflops 989)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
timeout 40 python3 measurements/gpu_check.py "$OUT" > "$OUT/gpu_check.log" 2>&1
timeout 200 "${BENCH[@]}" --networks PlainConvUNet DynTransNet "DynTransNet[selective_checkpointing=False]" \
    "DynTransNet[patch_embedding=overlapping]" --no-inference --attention --traffic --rounds 2 --repeats 3 --warmup 1 \
    --out "$OUT/train_128.json" > "$OUT/train_128.md" 2>&1
timeout 140 "${BENCH[@]}" --networks PlainConvUNet SegResNet DynUNet UNETR SwinUNETR VNet "Attention U-Net" \
    --no-inference --rounds 1 --repeats 2 --warmup 1 --out "$OUT/baselines_train_128.json" > "$OUT/baselines_train_128.md" 2>&1
timeout 150 "${BENCH[@]}" --networks PlainConvUNet DynTransNet "ResEnc M" Primus-S --no-train --no-mirroring --rounds 1 \
    --out "$OUT/inference_128.json" > "$OUT/inference_128.md" 2>&1
ls -l "$OUT"
