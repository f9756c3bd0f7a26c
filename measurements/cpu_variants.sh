#!/usr/bin/env bash
# Issue "cost at or below nnU-Net's U-Net", on this project's 2-core CPU: DynTransNet and the variants
# worth measuring, against PlainConvUNet built from the same plan, in one run (the issue's setting:
# patch 32x64x64, batch 2, inference on a 48x96x96 case without mirroring), plus D-MSA against plain
# attention per stage; then, in a second run written beside it (OUT_selective.json), selective
# activation checkpointing alone and with the other variants.
#
#     bash measurements/cpu_variants.sh [OUT.json]
set -euo pipefail
out=${1:-measurements/results/cpu_variants.json}
mkdir -p "$(dirname "$out")"
dyntransnet_benchmark --patch 32x64x64 --device cpu --batch 2 --no-mirroring --attention --repeats 3 --warmup 1 \
    --networks PlainConvUNet DynTransNet "DynTransNet, plain MSA" "DynTransNet, checkpointed" \
    "DynTransNet[mlp_ratio=2]" "DynTransNet[mlp_ratio=1]" "DynTransNet[head_dim=64]" \
    "DynTransNet[mlp_ratio=2,head_dim=64]" --out "$out"
dyntransnet_benchmark --patch 32x64x64 --device cpu --batch 2 --no-mirroring --repeats 3 --warmup 1 \
    --networks PlainConvUNet DynTransNet "DynTransNet, checkpointed" "DynTransNet[selective_checkpointing=True]" \
    "DynTransNet[selective_checkpointing=True,activation_checkpointing=True]" \
    "DynTransNet[selective_checkpointing=True,mlp_ratio=2,head_dim=64]" --out "${out%.json}_selective.json"
