#!/usr/bin/env bash
# One screen's report: today's default (nnUNetTrainerDynTransNet_Conv2_NoMirroring, conv_stages=2) against a variant
# over the folds the variant finished, paired by case, into docs/comparison/screens/NAME.
#
#     bash docs/comparison/screens/report_screen.sh WORK NAME VARIANT_TRAINER "TITLE" [BASELINE_TRAINER]
#
# BASELINE_TRAINER (default: the default's trainer above) is the row the variant is paired with, for a screen that
# changes one thing in another variant (the D-MSA ablation under the optimizer per part).
#
# WORK is run.sh's work folder with RESULTS=unet32 (the equal-time folds live there). The default's folders hold
# five folds and a screen's variant three or two, so both are linked fold by fold into WORK/partial_NAME first:
# the report then scores the same cases for both.
set -euo pipefail
work=$1; name=$2; variant=$3; title=$4
here=$(cd "$(dirname "$0")" && pwd)
results=$work/unet32/Dataset991_LiverPhantomCT
linked=$work/partial_$name/Dataset991_LiverPhantomCT
suffix=__nnUNetPlans__3d_fullres_narrow
default=${5:-nnUNetTrainerDynTransNet_Conv2_NoMirroring}
rm -rf "$work/partial_$name" "$work/${name}_report"
folds=()
for f in 0 1 2 3 4; do [ -f "$results/$variant$suffix/fold_$f/validation/summary.json" ] && folds+=("$f"); done
[ ${#folds[@]} -gt 0 ] || { echo "report_screen.sh: $variant has no finished fold under $results" >&2; exit 2; }
for trainer in $default $variant; do
    mkdir -p "$linked/$trainer$suffix"
    for x in plans.json dataset.json dataset_fingerprint.json; do ln -s "$results/$trainer$suffix/$x" "$linked/$trainer$suffix/$x"; done
    for f in "${folds[@]}"; do ln -s "$results/$trainer$suffix/fold_$f" "$linked/$trainer$suffix/fold_$f"; done
done
export nnUNet_raw=$work/raw nnUNet_preprocessed=$work/preprocessed nnUNet_results=$work/partial_$name
out=$work/${name}_report
dyntransnet_report "$linked/$default$suffix" "$linked/$variant$suffix" --baseline $default \
    --title "Phantom (lits tumors), $title, 31 epochs of 50 steps each, folds ${folds[*]}" --out "$out" -np 2
python "$here/table.py" epochs "$work/partial_$name" "$out/epochs.json"
python "$here/table.py" seconds "$work/partial_$name" "$out/seconds.json"
rm -rf "${here:?}/$name" && mkdir -p "$here/$name"
cp -r "$out"/{report.md,summary.json,metrics_per_case.csv,figures,epochs.json,seconds.json} "$here/$name/"
