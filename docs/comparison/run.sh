#!/usr/bin/env bash
# The example comparison of docs/comparison: nnU-Net's U-Net, DynTransNet, SegResNet and Attention U-Net
# on the phantom, each trained for the same wall-clock budget on this CPU, on several folds of nnU-Net's
# 5-fold split, scored by dyntransnet_report over all their validation cases.
#
#     bash docs/comparison/run.sh [WORK_DIR] [MINUTES] [FOLDS]   # defaults: /tmp/dyntransnet_comparison, 6, "0 1 2"
#
# Everything is written under WORK_DIR (nnU-Net's three folders, the benchmark JSON, the report);
# nothing in the repository is touched. About 4 x MINUTES per fold + 20 minutes on a 2-core machine.
#
# Environment (all optional):
#   TRAINERS="A B"   the trainers to run, in this order (default: the four below); the first is the report's baseline
#   TUMORS=lits      the phantom's tumor profile (dyntransnet_make_phantom --tumors; default lits, dataset 991;
#                    "standard" is the phantom of the 2026-11-30 run, dataset 990)
#   EPOCHS=N         train N epochs of 50 steps instead of MINUTES (the screens: the same steps for every network,
#                    whatever else the machine does); MINUTES is then only the report's title. "N1 N2 ..." gives
#                    each trainer of TRAINERS its own count, in order (equal time at known step costs: N / ratio)
#   NO_BENCHMARK=1   skip the cost benchmark (screens)
#   RESULTS=NAME     nnU-Net's results folder under WORK_DIR (default results; a screen uses its own, so that its
#                    fixed-step folds are never taken for the equal-time comparison's finished folds)
#   REPORT=DIR       the report's folder (default WORK_DIR/report)
set -euo pipefail

work=${1:-/tmp/dyntransnet_comparison}
minutes=${2:-6}
read -r -a folds <<< "${3:-0 1 2}"
tumors=${TUMORS:-lits}
case $tumors in
    lits) dataset_id=991 ;;
    standard) dataset_id=990 ;;
    *) echo "run.sh: TUMORS=$tumors: give lits or standard" >&2; exit 2 ;;
esac
dataset=Dataset${dataset_id}_LiverPhantomCT
export nnUNet_raw=$work/raw nnUNet_preprocessed=$work/preprocessed nnUNet_results=$work/${RESULTS:-results}
export nnUNet_n_proc_DA=${nnUNet_n_proc_DA:-1} nnUNet_compile=false
plans=$nnUNet_preprocessed/$dataset/nnUNetPlans.json
# the four networks, each without mirroring (trainers/no_mirroring.py): the phantom's liver lies on the
# patient's right, as in real scans, and mirroring would hide that cue from all four alike
read -r -a trainers <<< "${TRAINERS:-nnUNetTrainer_WallClock_NoMirroring nnUNetTrainerDynTransNet_NoMirroring
    nnUNetTrainerSegResNet_NoMirroring nnUNetTrainerAttentionUNet_NoMirroring}"
read -r -a epochs <<< "${EPOCHS:-}"
if [ ${#epochs[@]} -gt 1 ] && [ ${#epochs[@]} -ne ${#trainers[@]} ]; then
    echo "run.sh: EPOCHS=\"${EPOCHS}\" gives ${#epochs[@]} counts for ${#trainers[@]} trainers: give one, or one per trainer" >&2
    exit 2
fi
budget_of() {  # the budget variable of trainer number $1
    if [ ${#epochs[@]} -eq 0 ]; then echo "DYNTRANSNET_TRAIN_MINUTES=$minutes"
    elif [ ${#epochs[@]} -eq 1 ]; then echo "DYNTRANSNET_TRAIN_EPOCHS=${epochs[0]}"
    else echo "DYNTRANSNET_TRAIN_EPOCHS=${epochs[$1]}"; fi
}
if [ ${#epochs[@]} -eq 0 ]; then title="equal wall-clock budget ($minutes min per network and fold, CPU)"
elif [ ${#epochs[@]} -eq 1 ]; then title="${epochs[0]} epochs of 50 steps per network and fold"
else title="epochs of 50 steps per fold: ${epochs[*]} (in the order of the trainers)"; fi

# 40 phantom cases; each fold of nnU-Net's split validates 8 of them
[ -d "$nnUNet_raw/$dataset" ] || dyntransnet_make_phantom -d $dataset_id -n 40 --test 0 --tumors "$tumors"
[ -f "$plans" ] || nnUNetv2_plan_and_preprocess -d $dataset_id -c 3d_fullres -np 2

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
    for i in "${!trainers[@]}"; do
        tr=${trainers[$i]}
        out=$nnUNet_results/$dataset/${tr}__nnUNetPlans__3d_fullres_narrow/fold_$fold
        [ -f "$out/validation/summary.json" ] && continue
        env "$(budget_of "$i")" nnUNetv2_train $dataset_id 3d_fullres_narrow "$fold" -tr "$tr" -device cpu
    done
done

# what each row costs, measured in one run from the same configuration
[ -n "${NO_BENCHMARK:-}" ] || [ -f "$work/benchmark.json" ] || dyntransnet_benchmark --plan "$plans" -c 3d_fullres_narrow --device cpu \
    --networks PlainConvUNet DynTransNet SegResNet "Attention U-Net" --no-mirroring --out "$work/benchmark.json"

folders=()
for tr in "${trainers[@]}"; do folders+=("$nnUNet_results/$dataset/${tr}__nnUNetPlans__3d_fullres_narrow"); done
benchmark=(); [ -f "$work/benchmark.json" ] && benchmark=(--benchmark "$work/benchmark.json")
dyntransnet_report "${folders[@]}" --baseline "${trainers[0]}" "${benchmark[@]}" \
    --title "Phantom ($tumors tumors), $title" --out "${REPORT:-$work/report}" --overwrite
