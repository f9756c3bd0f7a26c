"""Console commands ``dyntransnet_convert_lits`` and ``dyntransnet_convert_atlas``, and the registry a new one joins.

A converter is a finder (``layouts.py``: release folder -> training and test :class:`Case` lists and the layout's
name), a :class:`DatasetSpec` registered with :func:`register_dataset`, and a console command that calls
:func:`convert` with its name (an entry point in ``setup.py``). Validation, staging, ``--overwrite`` and the
ownership rule come from ``raw_dataset.py``.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from nnunet_dyntransnet.dataset_conversion.layouts import find_atlas_cases, find_lits_cases
from nnunet_dyntransnet.dataset_conversion.raw_dataset import Case, ConversionError, write_raw_dataset
from nnunet_dyntransnet.utilities.command import run_command

__all__ = ["DatasetSpec", "DATASETS", "register_dataset", "convert", "convert_lits_entry", "convert_atlas_entry"]


@dataclass(frozen=True)
class DatasetSpec:
    """Everything a converter needs beside the files.

    Attributes:
        finder: release folder -> (training cases, test cases, the layout's name); raises ``ConversionError`` with
            a message for a folder it does not recognise.
        default_id: the dataset id ``-d`` defaults to.
        name: the dataset's name, ``DatasetNNN_<name>`` in ``$nnUNet_raw``.
        channel: nnU-Net's channel name (``CT`` selects its CT normalisation; anything else z-scores).
        description, reference, license: written into dataset.json.
    """

    finder: Callable[[Path], Tuple[List[Case], List[Case], str]]
    default_id: int
    name: str
    channel: str
    description: str
    reference: str
    license: str


DATASETS: Dict[str, DatasetSpec] = {}


def register_dataset(kind: str, spec: DatasetSpec) -> DatasetSpec:
    """Make ``spec`` the dataset that ``convert(kind)`` (``dyntransnet_convert_<kind>``) converts; returns it."""
    if not isinstance(spec, DatasetSpec):
        raise TypeError(f"register_dataset({kind!r}, ...): {spec!r} is not a DatasetSpec, which states what a converter "
                        f"needs (finder, default id, name, channel, description, reference, license)")
    DATASETS[kind] = spec
    return spec


register_dataset("lits", DatasetSpec(
    finder=find_lits_cases, default_id=501, name="LiTS", channel="CT",
    description="Liver Tumor Segmentation benchmark (LiTS): contrast-enhanced abdominal CT, liver and tumor labels",
    reference="Bilic et al., The Liver Tumor Segmentation Benchmark (LiTS), Med. Image Anal. 84 (2023) 102680",
    license="CC BY-NC-ND 4.0"))
register_dataset("atlas", DatasetSpec(
    finder=find_atlas_cases, default_id=502, name="ATLAS", channel="MRI",
    description="ATLAS: contrast-enhanced T1 liver MRI of HCC patients, liver and tumor labels",
    reference="Quinton et al., A Tumour and Liver Automatic Segmentation (ATLAS) Dataset, Data 8 (2023) 79",
    license="CC BY-NC-SA 4.0"))


def convert(kind: str, argv: Optional[Sequence[str]] = None) -> int:
    """The converter of the registered dataset ``kind``, as a console command (``dyntransnet_convert_<kind>``)."""
    spec = DATASETS[kind]
    parser = argparse.ArgumentParser(
        prog=f"dyntransnet_convert_{kind}",
        description=f"Convert {spec.name} to nnU-Net's raw format in $nnUNet_raw/DatasetNNN_{spec.name}.",
    )
    parser.add_argument("src", type=Path, help="the release folder as downloaded (docs/datasets.md lists the layouts)")
    parser.add_argument("-d", type=int, default=spec.default_id, help=f"dataset id (default {spec.default_id})")
    parser.add_argument("-np", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--regions", action="store_true",
                        help="label the dataset as regions liver={1,2}, tumor={2} (sigmoid outputs, as the paper)")
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace an existing DatasetNNN_{spec.name} (the new one is complete before the old "
                             f"one is deleted)")
    parser.add_argument("--replace_other_name", action="store_true",
                        help="with --overwrite: also replace a dataset with the same id and another name")
    args = parser.parse_args(argv)
    if args.replace_other_name and not args.overwrite:
        parser.error("--replace_other_name only works together with --overwrite")

    def convert() -> str:
        training, test, layout = spec.finder(args.src)
        print(f"{args.src}: {layout} layout, {len(training)} training and {len(test)} test cases")
        for folder, counts in _cases_per_folder(args.src, training, test).items():
            print(f"  {folder}: {counts[0]} training, {counts[1]} test")
        target = write_raw_dataset(
            training, test, args.d, spec.name, spec.channel, regions=args.regions, overwrite=args.overwrite,
            replace_other_name=args.replace_other_name, num_processes=args.np, description=spec.description,
            command=f"dyntransnet_convert_{kind}", inputs=[(args.src, "the release folder it converts, SRC")],
            reference=spec.reference, license=spec.license,
        )
        return f"wrote {target}\nnext: nnUNetv2_plan_and_preprocess -d {args.d} --verify_dataset_integrity"

    return run_command(f"dyntransnet_convert_{kind}", convert, (ConversionError,))


def _cases_per_folder(src: Path, training: Sequence[Case], test: Sequence[Case]) -> Dict[str, List[int]]:
    """source folder (relative to ``src``) -> [training cases, test cases] found there."""
    counts: Dict[str, List[int]] = {}
    for column, cases in enumerate((training, test)):
        for case in cases:
            folder = os.path.relpath(case.image.parent, src)
            counts.setdefault(folder, [0, 0])[column] += 1
    return dict(sorted(counts.items()))


def convert_lits_entry(argv: Optional[Sequence[str]] = None) -> int:
    return convert("lits", argv)


def convert_atlas_entry(argv: Optional[Sequence[str]] = None) -> int:
    return convert("atlas", argv)
