#!/usr/bin/env bash
# The example comparison of docs/comparison: nnU-Net's U-Net, DynTransNet, SegResNet and Attention U-Net
# on the phantom, each trained for the same wall-clock budget on this CPU, on several folds of nnU-Net's
# 5-fold split, scored by dyntransnet_report over all their validation cases.
#
#     bash docs/comparison/run.sh [WORK_DIR] [MINUTES] [FOLDS]   # defaults: /tmp/dyntransnet_comparison, 6, "0 1 2"
#
# Everything is written under WORK_DIR (nnU-Net's three folders, the benchmark JSON, the report);
# nothing in the repository is touched. About 4 x MINUTES per fold + 20 minutes on a 2-core machine.
set -euo pipefail

work=${1:-/tmp/dyntransnet_comparison}
minutes=${2:-6}
read -r -a folds <<< "${3:-0 1 2}"
export nnUNet_raw=$work/raw nnUNet_preprocessed=$work/preprocessed nnUNet_results=$work/results
export nnUNet_n_proc_DA=${nnUNet_n_proc_DA:-1} nnUNet_compile=false
plans=$nnUNet_preprocessed/Dataset990_LiverPhantomCT/nnUNetPlans.json
# the four networks, each without mirroring (trainers/no_mirroring.py): the phantom's liver lies on the
# patient's right, as in real scans, and mirroring would hide that cue from all four alike
trainers=(nnUNetTrainer_WallClock_NoMirroring nnUNetTrainerDynTransNet_NoMirroring nnUNetTrainerSegResNet_NoMirroring
          nnUNetTrainerAttentionUNet_NoMirroring)

# 40 phantom cases; each fold of nnU-Net's split validates 8 of them
[ -d "$nnUNet_raw/Dataset990_LiverPhantomCT" ] || dyntransnet_make_phantom -d 990 -n 40 --test 0
[ -f "$plans" ] || nnUNetv2_plan_and_preprocess -d 990 -c 3d_fullres -np 2

# A CPU-sized configuration, the way nnU-Net's documentation extends a plan: "3d_fullres_narrow"
# inherits everything from 3d_fullres (patch, spacing, preprocessed data) except the widths, 8 to 64
# instead of 32 to 320. Every network here takes its widths from the plan.
python3 - "$plans" <<'EOF'
import json, sys
path = sys.argv[1]
plans = json.load(open(path))
if "3d_fullres_narrow" not in plans["configurations"]:
    arch = json.loads(json.dumps(plans["configurations"]["3d_fullres"]["architecture"]))
    n = len(arch["arch_kwargs"]["features_per_stage"])
    arch["arch_kwargs"]["features_per_stage"] = [min(8 * 2 ** i, 64) for i in range(n)]
    plans["configurations"]["3d_fullres_narrow"] = {"inherits_from": "3d_fullres", "architecture": arch}
    json.dump(plans, open(path, "w"), indent=4)
EOF

# the same wall-clock budget for every trainer (trainers/budget.py), fold by fold so that the machine's drift
# over the run hits every network alike; a finished training is skipped
for fold in "${folds[@]}"; do
    for tr in "${trainers[@]}"; do
        out=$nnUNet_results/Dataset990_LiverPhantomCT/${tr}__nnUNetPlans__3d_fullres_narrow/fold_$fold
        [ -f "$out/validation/summary.json" ] && continue
        DYNTRANSNET_TRAIN_MINUTES=$minutes nnUNetv2_train 990 3d_fullres_narrow "$fold" -tr "$tr" -device cpu
    done
done

# what each row costs, measured in one run from the same configuration
[ -f "$work/benchmark.json" ] || dyntransnet_benchmark --plan "$plans" -c 3d_fullres_narrow --device cpu \
    --networks PlainConvUNet DynTransNet SegResNet "Attention U-Net" --no-mirroring --out "$work/benchmark.json"

folders=()
for tr in "${trainers[@]}"; do folders+=("$nnUNet_results/Dataset990_LiverPhantomCT/${tr}__nnUNetPlans__3d_fullres_narrow"); done
dyntransnet_report "${folders[@]}" --baseline nnUNetTrainer_WallClock_NoMirroring \
    --benchmark "$work/benchmark.json" --title "Phantom, equal wall-clock budget ($minutes min per network and fold, CPU)" \
    --out "$work/report" --overwrite
