#!/usr/bin/env bash
# One variant at equal time over the five folds, reported beside the U-Net's and the default's rows of the committed
# equal_time_conv2 screen (dyntransnet_report --scored: their result folders need not exist; the phantom regenerates
# identically, and --scored refuses a case whose reference differs), into docs/comparison/screens/NAME:
#
#     bash docs/comparison/screens/report_equal_time.sh WORK NAME VARIANT_TRAINER "TITLE"
#
# WORK is run.sh's work folder with RESULTS=unet32 (or another RESULTS, given to both), where VARIANT_TRAINER trained
# folds 0-4 (EPOCHS = 31 over its time per fold against the default's). Writes NAME/ (against the U-Net, the
# report's baseline), NAME/vs_default/ (against the default alone), NAME/epochs.json and seconds.json (the
# variant's from its logs, the scored rows' from equal_time_conv2), and adds the variant's false-positive
# components to rm_logit_split/false_positive_lesions_folds0-4.json.
set -euo pipefail
work=$1; name=$2; variant=$3; title=$4
here=$(cd "$(dirname "$0")" && pwd)
runs=$work/${RESULTS:-unet32}
results=$runs/Dataset991_LiverPhantomCT
suffix=__nnUNetPlans__3d_fullres_narrow
unet=nnUNetTrainer_WallClock_NoMirroring default=nnUNetTrainerDynTransNet_Conv2_NoMirroring
scored=$here/equal_time_conv2
for f in 0 1 2 3 4; do
    [ -f "$results/$variant$suffix/fold_$f/validation/summary.json" ] || {
        echo "report_equal_time.sh: $variant has not finished fold $f under $results; train folds 0-4 first" >&2; exit 2; }
done
export nnUNet_raw=$work/raw nnUNet_preprocessed=$work/preprocessed nnUNet_results=$runs
rm -rf "$work/${name}_report" "$work/${name}_vs_default"
dyntransnet_report "$results/$variant$suffix" --scored $unet="$scored" --scored $default="$scored" --baseline $unet \
    -np 2 --out "$work/${name}_report" --title "Phantom (lits tumors), equal wall-clock time: $title, folds 0 1 2 3 4"
dyntransnet_report "$results/$variant$suffix" --scored $default="$scored" --baseline $default \
    -np 2 --out "$work/${name}_vs_default" --title "Phantom (lits tumors), $title, against the default, folds 0 1 2 3 4"
for kind in epochs seconds; do
    python "$here/table.py" $kind "$runs" "$work/${name}_report/$kind.json" --only "$variant" \
        --scored equal_time_conv2 $unet $default
done
python "$here/false_positive_lesions.py" "$results" "0 1 2 3 4" \
    "$here/rm_logit_split/false_positive_lesions_folds0-4.json" "$variant" > /dev/null
rm -rf "${here:?}/$name" && mkdir -p "$here/$name/vs_default"
cp -r "$work/${name}_report"/{report.md,summary.json,metrics_per_case.csv,figures,epochs.json,seconds.json} "$here/$name/"
cp -r "$work/${name}_vs_default"/{report.md,summary.json,figures} "$here/$name/vs_default/"
