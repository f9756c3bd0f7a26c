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
from typing import Dict, Optional, Sequence

from nnunet_dyntransnet.utilities.command import CommandStop, plain_text, run_steps

COMMAND = "dyntransnet_plan_and_preprocess"

__all__ = ["main", "preprocessed_data_complete"]

CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres")  # what nnU-Net's planner (and so ours) can plan


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=COMMAND,
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
    return run_steps(COMMAND, lambda: _plan_and_preprocess(args))


def _plan_and_preprocess(args) -> int:
    """Every check first (folders, target, process count, dataset ids, the plans files it would replace), then per
    dataset: fingerprint, plans, preprocessing of what is not there yet."""
    missing = [v for v in ("nnUNet_raw", "nnUNet_preprocessed") if not os.environ.get(v)]
    if missing:
        raise CommandStop(f"set {', '.join(missing)} (nnU-Net's folders) first")
    plans_name = _checked_target(args)
    if args.np is not None and args.np < 1:
        raise CommandStop(f"-np must be at least 1, got {args.np}")
    names = _dataset_names(args.d)
    for name in names.values():
        _claim_plans_file(Path(os.environ["nnUNet_preprocessed"]) / name / f"{plans_name}.json", plans_name,
                          args.replace_plans_of_other_planners)
    for dataset_id, name in names.items():
        plans = _plan(args, dataset_id, name, plans_name)
        if not args.no_pp:
            _preprocess(args, dataset_id, name, plans_name, plans)
        print(f"\n{name}: train and predict with  -p {plans_name}, e.g.\n"
              f"  nnUNetv2_train {dataset_id} 3d_fullres 0 -tr nnUNetTrainerDynTransNet -p {plans_name}")
    return 0


def _checked_target(args) -> str:
    """The plans name for ``-gpu_memory_target`` (or ``-overwrite_plans_name``), the target checked."""
    from nnunet_dyntransnet.plans.dyntransnet_planner import plans_name_for, smallest_possible_target

    try:
        plans_name = plans_name_for(args.gpu_memory_target)  # validates the target, also when renamed
    except ValueError as e:
        raise CommandStop(str(e)) from None
    floor = smallest_possible_target()
    if args.gpu_memory_target < floor:
        raise CommandStop(f"-gpu_memory_target {args.gpu_memory_target:g} is below the smallest DynTransNet any "
                          f"dataset can be planned for ({floor:.2g} GB: two stages on a patch of 8 voxels); pass at "
                          f"least that (presets 8, 24, 40)")
    return args.overwrite_plans_name or plans_name


def _dataset_names(ids) -> Dict[int, str]:
    """Dataset id -> nnU-Net's dataset name, every id checked before any work starts."""
    from nnunetv2.utilities.dataset_name_id_conversion import convert_id_to_dataset_name

    names = {}
    for dataset_id in ids:
        try:
            names[dataset_id] = convert_id_to_dataset_name(dataset_id)
        except RuntimeError as e:
            raise CommandStop(f"dataset {dataset_id}: {e}") from None
    return names


def _claim_plans_file(plans_file: Path, plans_name: str, replace_others: bool) -> None:
    """ownership.py: a plans file is replaced only if this planner wrote it (re-planning replaces it, as nnU-Net
    does), or, with --replace_plans_of_other_planners, because the user named another planner's file."""
    from nnunet_dyntransnet.plans.dyntransnet_planner import DynTransNetPlanner
    from nnunet_dyntransnet.utilities.ownership import Claim, OwnershipError

    planner_used = _planner_of(plans_file)
    try:
        Claim(COMMAND, option="-overwrite_plans_name").file(
            plans_file, overwrite=True, owned=lambda p: planner_used == DynTransNetPlanner.__name__ or replace_others)
    except OwnershipError as e:
        raise CommandStop(f"{e}; it was written by {planner_used} and every nnU-Net command with -p {plans_name} uses "
                          f"it. Choose another -overwrite_plans_name, or pass --replace_plans_of_other_planners to "
                          f"replace it") from None


def _plan(args, dataset_id: int, name: str, plans_name: str) -> dict:
    """The fingerprint (nnU-Net's, reused unless asked) and this planner's plans, printed per configuration."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprint_dataset

    from nnunet_dyntransnet.plans.dyntransnet_planner import DynTransNetPlanner, smallest_target_for

    preprocessed = Path(os.environ["nnUNet_preprocessed"]) / name
    if args.clean or args.verify_dataset_integrity or not (preprocessed / "dataset_fingerprint.json").is_file():
        extract_fingerprint_dataset(dataset_id, check_dataset_integrity=args.verify_dataset_integrity, clean=True,
                                    **({} if args.np is None else {"num_processes": args.np}))
    else:
        print(f"{name}: using the existing fingerprint (--clean to extract it again)")
    try:
        plans = DynTransNetPlanner(dataset_id, args.gpu_memory_target, plans_name=plans_name).plan_experiment()
    except ValueError as e:  # the target leaves too small a patch for two stages on this dataset
        enough = smallest_target_for(dataset_id, args.gpu_memory_target)
        hint = f"the smallest that plans {name} is about {enough:.2g} GB" if enough else "pass a larger one"
        raise CommandStop(f"-gpu_memory_target {args.gpu_memory_target:g} is too small for {name} ({e}); {hint}. "
                          f"Nothing was written") from None
    for cfg, c in plans["configurations"].items():
        if "patch_size" in c:
            print(f"{name} {plans_name} {cfg}: patch {c['patch_size']}, batch {c['batch_size']}, "
                  f"data {c['data_identifier']}")
    return plans


def _preprocess(args, dataset_id: int, name: str, plans_name: str, plans: dict) -> None:
    """nnU-Net's preprocessing of the configurations of ``-c`` whose data are not complete yet."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import preprocess_dataset
    from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

    raw = Path(os.environ["nnUNet_raw"]) / name
    preprocessed = Path(os.environ["nnUNet_preprocessed"]) / name
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


if __name__ == "__main__":
    sys.exit(main())
