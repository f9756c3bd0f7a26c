"""``dyntransnet_plan_and_preprocess -d ID [-gpu_memory_target GB]``: nnU-Net's planning, sized for DynTransNet.

nnUNetv2_plan_and_preprocess's ``-pl`` only finds planners inside the nnunetv2 package, so this
command runs the same three steps through nnU-Net's API with :class:`DynTransNetPlanner`:

1. fingerprint (skipped if ``dataset_fingerprint.json`` exists, unless ``--clean``);
2. plan for the GPU-memory target: ``nnUNetDynTransNetMPlans`` (8 GB), ``...LPlans`` (24),
   ``...XLPlans`` (40), else ``nnUNetDynTransNetPlans_<GB>G``;
3. preprocess, except where the data is already there: ``2d`` and ``3d_fullres`` share nnU-Net's
   default preprocessed data (``nnUNetPlans_3d_fullres``), so after ``nnUNetv2_plan_and_preprocess``
   nothing is preprocessed twice.

Then train and predict with ``-p PLANS_NAME``, as with nnU-Net's ResEnc presets.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from nnunet_dyntransnet.utilities.command import plain_text

__all__ = ["main", "preprocessed_data_complete"]

CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres")  # what nnU-Net's planner (and so ours) can plan


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dyntransnet_plan_and_preprocess",
                                description=plain_text(__doc__.split("\n\n")[0].split(": ", 1)[1]),
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=plain_text(__doc__.split("\n\n", 1)[1]))
    p.add_argument("-d", nargs="+", type=int, required=True, help="dataset id(s)")
    p.add_argument("-gpu_memory_target", type=float, default=8,
                   help="GPU memory (GB) to plan for; presets 8 (M), 24 (L), 40 (XL) (default 8)")
    p.add_argument("-overwrite_plans_name", default=None, help="plans name instead of the preset's")
    p.add_argument("--replace_plans_of_other_planners", action="store_true",
                   help="let -overwrite_plans_name replace a plans file that another planner wrote (for example "
                        "nnU-Net's own nnUNetPlans.json, which every nnUNetv2_train without -p then uses)")
    p.add_argument("-c", nargs="+", default=list(CONFIGURATIONS), choices=CONFIGURATIONS, metavar="CONFIG",
                   help=f"configurations to preprocess, of {', '.join(CONFIGURATIONS)} (default: all; 3d_lowres exists "
                        f"only where nnU-Net plans one)")
    p.add_argument("-np", type=int, default=None, help="processes (default: nnU-Net's default)")
    p.add_argument("--verify_dataset_integrity", action="store_true", help="as nnUNetv2_plan_and_preprocess")
    p.add_argument("--clean", action="store_true", help="extract the fingerprint again even if it exists")
    p.add_argument("--no_pp", action="store_true", help="plan only, do not preprocess")
    return p


def preprocessed_data_complete(folder: Path, case_ids: Sequence[str]) -> bool:
    """True if ``folder`` holds nnU-Net's preprocessed files (data, segmentation, properties) of every case."""
    if not folder.is_dir():
        return False
    names = {p.name for p in folder.iterdir()}
    for case in case_ids:
        has_data = any(f"{case}{ext}" in names for ext in (".b2nd", ".npz", ".npy"))
        if not has_data or f"{case}.pkl" not in names:
            return False
    return True


def _planner_of(plans_file: Path) -> Optional[str]:
    """The planner class that wrote ``plans_file`` (nnU-Net records it), "an unknown planner", or None if absent."""
    if not plans_file.is_file():
        return None
    try:
        return json.loads(plans_file.read_text()).get("experiment_planner_used") or "an unknown planner"
    except (OSError, ValueError, AttributeError):
        return "an unknown planner"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    missing = [v for v in ("nnUNet_raw", "nnUNet_preprocessed") if not os.environ.get(v)]
    if missing:
        print(f"dyntransnet_plan_and_preprocess: set {', '.join(missing)} (nnU-Net's folders) first", file=sys.stderr)
        return 2
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (extract_fingerprint_dataset,
                                                                        preprocess_dataset)
    from nnunetv2.utilities.dataset_name_id_conversion import convert_id_to_dataset_name
    from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

    from nnunet_dyntransnet.plans.dyntransnet_planner import (DynTransNetPlanner, plans_name_for,
                                                              smallest_possible_target, smallest_target_for)

    try:
        plans_name = plans_name_for(args.gpu_memory_target)  # validates the target, also when renamed
        plans_name = args.overwrite_plans_name or plans_name
    except ValueError as e:
        print(f"dyntransnet_plan_and_preprocess: {e}", file=sys.stderr)
        return 2
    floor = smallest_possible_target()
    if args.gpu_memory_target < floor:
        print(f"dyntransnet_plan_and_preprocess: -gpu_memory_target {args.gpu_memory_target:g} is below the smallest "
              f"DynTransNet any dataset can be planned for ({floor:.2g} GB: two stages on a patch of 8 voxels); "
              f"pass at least that (presets 8, 24, 40)", file=sys.stderr)
        return 2
    if args.np is not None and args.np < 1:
        print(f"dyntransnet_plan_and_preprocess: -np must be at least 1, got {args.np}", file=sys.stderr)
        return 2
    np_kwargs = {} if args.np is None else {"num_processes": args.np}
    names = {}
    for dataset_id in args.d:  # every id is checked before any work starts
        try:
            names[dataset_id] = convert_id_to_dataset_name(dataset_id)
        except RuntimeError as e:
            print(f"dyntransnet_plan_and_preprocess: dataset {dataset_id}: {e}", file=sys.stderr)
            return 2
    from nnunet_dyntransnet.utilities.ownership import Claim, OwnershipError

    for dataset_id, name in names.items():
        # ownership.py: a plans file is replaced only if this planner wrote it (re-planning replaces it, as nnU-Net
        # does), or, with --replace_plans_of_other_planners, because the user named another planner's file
        plans_file = Path(os.environ["nnUNet_preprocessed"]) / name / f"{plans_name}.json"
        planner_used = _planner_of(plans_file)
        try:
            Claim("dyntransnet_plan_and_preprocess", option="-overwrite_plans_name").file(
                plans_file, overwrite=True,
                owned=lambda p: planner_used == DynTransNetPlanner.__name__ or args.replace_plans_of_other_planners)
        except OwnershipError as e:
            print(f"dyntransnet_plan_and_preprocess: {e}; it was written by {planner_used} and every nnU-Net command "
                  f"with -p {plans_name} uses it. Choose another -overwrite_plans_name, or pass "
                  f"--replace_plans_of_other_planners to replace it", file=sys.stderr)
            return 2
    for dataset_id, name in names.items():
        preprocessed = Path(os.environ["nnUNet_preprocessed"]) / name
        if args.clean or args.verify_dataset_integrity or not (preprocessed / "dataset_fingerprint.json").is_file():
            extract_fingerprint_dataset(dataset_id, check_dataset_integrity=args.verify_dataset_integrity,
                                        clean=True, **np_kwargs)
        else:
            print(f"{name}: using the existing fingerprint (--clean to extract it again)")
        planner = DynTransNetPlanner(dataset_id, args.gpu_memory_target, plans_name=plans_name)
        try:
            plans = planner.plan_experiment()
        except ValueError as e:  # the target leaves too small a patch for two stages on this dataset
            enough = smallest_target_for(dataset_id, args.gpu_memory_target)
            hint = f"the smallest that plans {name} is about {enough:.2g} GB" if enough else "pass a larger one"
            print(f"dyntransnet_plan_and_preprocess: -gpu_memory_target {args.gpu_memory_target:g} is too small for "
                  f"{name} ({e}); {hint}. Nothing was written", file=sys.stderr)
            return 2
        for cfg, c in plans["configurations"].items():
            if "patch_size" in c:
                print(f"{name} {plans_name} {cfg}: patch {c['patch_size']}, batch {c['batch_size']}, "
                      f"data {c['data_identifier']}")
        if args.no_pp:
            continue
        raw = Path(os.environ["nnUNet_raw"]) / name
        cases = sorted(get_filenames_of_train_images_and_targets(str(raw), json.loads((raw / "dataset.json").read_text())))
        todo = []
        for cfg in args.c:
            if cfg not in plans["configurations"]:
                continue
            data = preprocessed / plans["configurations"][cfg]["data_identifier"]
            if preprocessed_data_complete(data, cases):
                print(f"{name} {cfg}: reusing the preprocessed data in {data}")
            else:
                todo.append(cfg)
        if todo:
            preprocess_dataset(dataset_id, plans_name, todo, [args.np or 4] * len(todo))
        print(f"\n{name}: train and predict with  -p {plans_name}, e.g.\n"
              f"  nnUNetv2_train {dataset_id} 3d_fullres 0 -tr nnUNetTrainerDynTransNet -p {plans_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
