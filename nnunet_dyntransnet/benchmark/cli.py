"""``dyntransnet_benchmark``: DynTransNet against nnU-Net's networks, built from one plan, measured in one run.

    dyntransnet_benchmark --patch 32x64x64 --device cpu
    dyntransnet_benchmark --plan nnUNetPlans.json -c 3d_fullres --device cuda --out result.json
    dyntransnet_benchmark --patch 128x128x128 --spacing 1 0.77 0.77 --device cuda --attention \\
        --memory-model 64x64x64 96x96x96 128x128x128

Per network (PlainConvUNet, ResEnc M, Primus-S, DynTransNet, DynTransNet with plain MSA):
parameters, forward FLOPs, median training step, sliding-window inference of one case through
nnU-Net's predictor with and without test-time mirroring, and the peak memory of the training
step; every figure also as a ratio against PlainConvUNet from the same run. ``--attention``
adds the dynamic bias's cost per attention stage; ``--memory-model`` checks the planning
estimate against measured memory over the given patch sizes.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from nnunet_dyntransnet.benchmark.measure import LIVE_MEMORY_ENV, run_in_child
from nnunet_dyntransnet.benchmark.networks import (BASELINE_NETWORKS, NETWORKS, baselines_for, default_plan, plan_from_file,
                                                   variant_options)

__all__ = ["main", "entry", "format_table", "default_case_shape"]

COMMAND = "dyntransnet_benchmark"
# a 512x512x128 CT at 0.8 x 0.8 x 2.5 mm, resampled to nnU-Net's LiTS spacing (1.0 x 0.77 x 0.77 mm)
GPU_CASE = [320, 532, 532]


def default_case_shape(patch: Sequence[int], device: str) -> List[int]:
    """A typical LiTS case on a GPU (3D plans); on CPU 1.5x the patch per axis (8 tiles in 3D)."""
    if device == "cuda" and len(patch) == 3:
        return list(GPU_CASE)
    return [int(math.ceil(p * 1.5)) for p in patch]


def _parse_shape(text: str) -> List[int]:
    try:
        return [int(v) for v in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 32x64x64, got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dyntransnet_benchmark", description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    source = p.add_mutually_exclusive_group()
    source.add_argument("--patch", type=_parse_shape, default=[32, 64, 64], help="patch size, e.g. 128x128x128")
    source.add_argument("--plan", help="an nnUNetPlans.json to take the configuration from (with -c)")
    p.add_argument("-c", "--configuration", default="3d_fullres")
    p.add_argument("--spacing", type=float, nargs="+", help="voxel spacing for --patch (default isotropic)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--classes", type=int, default=3)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--networks", nargs="+", default=list(NETWORKS), metavar="NAME",
                   help=f"networks to measure, PlainConvUNet first, each name quoted as the shell needs it (default: "
                        f"{' '.join(repr(n) for n in NETWORKS)}; baselines: "
                        f"{' '.join(repr(n) for n in BASELINE_NETWORKS)}; or a DynTransNet variant, "
                        f"'DynTransNet[mlp_ratio=2,head_dim=64]')"),
    p.add_argument("--baselines", action="store_true",
                   help="also measure every baseline of the paper's Tables 4/5 that runs this plan's dimensionality")
    p.add_argument("--dtype", choices=("fp16", "bf16"), default="fp16",
                   help="autocast dtype of the CUDA training step (fp16 with a grad scaler, as nnU-Net; or bf16)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="the device's peak dense TFLOP/s at --dtype, for model FLOP utilisation (H100/H200 SXM: 989)")
    p.add_argument("--case", type=_parse_shape, default=None,
                   help="preprocessed case for inference (default: 320x532x532 on CUDA, 1.5x the patch on CPU)")
    p.add_argument("--no-inference", action="store_true", help="skip the inference measurements")
    p.add_argument("--no-train", action="store_true", help="skip the training step (inference only)")
    p.add_argument("--no-mirroring", action="store_true", help="skip inference with test-time mirroring (8x the work in 3D)")
    p.add_argument("--repeats", type=int, default=3, help="timed training steps per measurement (their median)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3,
                   help="measure every network this many times, alternating between them (PlainConvUNet, DynTransNet, "
                        "PlainConvUNet, ...), so that a busy or drifting machine slows both alike; each figure is the "
                        "median over rounds, each ratio the median of the rounds' ratios (default 3)")
    p.add_argument("--compile", action="store_true", help="torch.compile every network (as nnU-Net does on CUDA)")
    p.add_argument("--attention", action="store_true", help="also time D-MSA against plain attention per stage")
    p.add_argument("--traffic", action="store_true",
                   help="also count the bytes the memory-bound operations of a training step move, and the matmuls' "
                        "FLOPs, on the meta device (benchmark/traffic.py); alone with --no-train --no-inference")
    p.add_argument("--memory-model", type=_parse_shape, nargs="+", metavar="PATCH", default=None,
                   help="also check compute_conv_feature_map_size against peak memory at these patch sizes")
    p.add_argument("--out", help="write the results as JSON here (a new file, or one this command wrote, with "
                                 "--overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an --out JSON that this command wrote")
    return p


def _measure(task: dict) -> dict:
    try:
        return run_in_child(task, env=LIVE_MEMORY_ENV if task["measure"] == "train_memory" else None)
    except RuntimeError as e:
        lines = [line for line in str(e).splitlines() if line.strip()]
        return {"network": task["network"], "measure": task["measure"], "error": lines[-1] if lines else str(e)}


def _checked_arguments(argv, parser):
    """The parsed arguments, refused (argparse's exit 2) before anything is measured: CUDA without CUDA, an --out
    this command may not replace, an unknown network; the networks start with the U-Net."""
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here; use --device cpu, or a machine with a GPU")
    if args.out:  # before anything (ownership.py): a new file, or one this command wrote and --overwrite
        from nnunet_dyntransnet.utilities.ownership import Claim, OwnershipError

        try:
            Claim(COMMAND, [(args.plan, "the plans file it reads")] if args.plan else [], "--out").file(
                Path(args.out), args.overwrite, owned=_is_benchmark)
        except OwnershipError as e:
            parser.error(str(e))
    for name in args.networks:
        try:
            if name not in (*NETWORKS, *BASELINE_NETWORKS) and variant_options(name) is None:
                parser.error(f"--networks: unknown network {name!r}; choose from {', '.join((*NETWORKS, *BASELINE_NETWORKS))}"
                             f" or a variant DynTransNet[OPTION=VALUE,...]")
        except ValueError as e:
            parser.error(f"--networks: {e}")
    if args.networks[0] != "PlainConvUNet":
        args.networks = ["PlainConvUNet"] + [n for n in args.networks if n != "PlainConvUNet"]
    return args


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    parser = _parser()
    args = _checked_arguments(argv, parser)
    plan = plan_from_file(args.plan, args.configuration) if args.plan else default_plan(args.patch, args.spacing)
    patch = list(plan.patch_size)
    if args.baselines:
        args.networks += [n for n in baselines_for(len(patch)) if n not in args.networks]
    case = args.case or default_case_shape(patch, args.device)
    base = {"plan_file": args.plan, "configuration": args.configuration, "patch": patch, "spacing": args.spacing,
            "device": args.device, "batch": args.batch, "repeats": args.repeats, "warmup": args.warmup,
            "compile": args.compile, "case_shape": case, "in_channels": 1, "classes": args.classes,
            "dtype": args.dtype}
    # on CPU the training step's peak memory is measured apart, under LIVE_MEMORY_ENV (measure.py says why)
    measures = ([] if args.no_train else ["train", "train_paired"] + (["train_memory"] if args.device == "cpu" else [])) + \
        ([] if args.no_inference else ["infer"] + ([] if args.no_mirroring else ["infer_mirrored"]))
    if not measures and not args.traffic:
        raise SystemExit("dyntransnet_benchmark: --no-train and --no-inference leave nothing to measure (add --traffic)")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    rounds: List[List[dict]] = []
    for i in range(args.rounds if measures else 1):
        rounds.append([])
        for name in args.networks:
            rounds[-1].append(_measure_row(base, name, measures, args))
            print(f"round {i + 1} of {args.rounds}: measured {name}", flush=True)
            if args.out:  # so that a run stopped by a time limit keeps what it measured
                _write(args.out, _summary(args, plan, patch, case, rounds, complete=False))
    result = _summary(args, plan, patch, case, rounds, complete=True)
    _add_counts(result, plan, args)
    print(format_table(result))
    if args.out:
        _write(args.out, result)
    return result


def _add_counts(result: Dict, plan, args) -> None:
    """What is counted rather than timed, where asked: memory traffic, the attention's bias cost, the memory model."""
    if args.traffic:
        _add_traffic(result["results"], plan, args)
    if args.attention:
        from nnunet_dyntransnet.benchmark.attention_cost import attention_bias_cost
        from nnunet_dyntransnet.network import DynTransNet

        layout = DynTransNet.from_plan(plan, 1, args.classes).layout
        result["attention"] = attention_bias_cost(layout, args.batch, torch.device(args.device), head_dims=(32, 64),
                                                  max_windows=0 if args.device == "cuda" else 64)
    if args.memory_model:
        from nnunet_dyntransnet.benchmark.memory_check import memory_model_check

        result["memory_model"] = memory_model_check(args.memory_model, ["PlainConvUNet", "DynTransNet"], args.device,
                                                    args.batch, args.spacing)


def _add_traffic(rows: List[dict], plan, args) -> None:
    """Each row's :func:`~nnunet_dyntransnet.benchmark.traffic.step_traffic` and its ratios to PlainConvUNet's, and
    its planning estimate (``feature_map_size``, what it keeps for backward in nnU-Net's units) with its ratio."""
    from nnunet_dyntransnet.benchmark.networks import build_networks, estimate_feature_map_size
    from nnunet_dyntransnet.benchmark.traffic import step_traffic

    builders = build_networks(plan, 1, args.classes, deep_supervision=True, names=[r["network"] for r in rows])
    for row in rows:
        with torch.device("meta"):
            model = builders[row["network"]]()
        row.setdefault("feature_map_size", estimate_feature_map_size(model, list(plan.patch_size)))
        row["traffic"] = step_traffic(model, args.batch, 1, args.classes, list(plan.patch_size))
    for row in rows:
        row["other_bytes_ratio"] = row["traffic"]["other_bytes"] / rows[0]["traffic"]["other_bytes"]
        row["flops_ratio"] = row["traffic"]["flops"] / rows[0]["traffic"]["flops"]
        if row.get("feature_map_size") and rows[0].get("feature_map_size"):
            row["feature_map_ratio"] = row["feature_map_size"] / rows[0]["feature_map_size"]


def _measure_row(base: dict, name: str, measures: Sequence[str], args) -> dict:
    """One network's measurements (each in a child process of its own)."""
    row = {"network": name}
    for m in measures:
        if m == "train_paired" and name == args.networks[0]:
            continue  # the reference itself
        r = _measure({**base, "network": name, "measure": m, "reference": args.networks[0]})
        if "error" in r:
            row.setdefault("errors", {})[m] = r["error"]
            continue
        if m == "train":
            row.update({k: r[k] for k in ("parameters", "forward_gflops_per_sample", "feature_map_size",
                                          "train_step_s", "patch")})
            # on CPU the peak that follows the tensors comes from the memory child; this one is glibc's heap
            row["peak_memory_gib" if args.device == "cuda" else "default_malloc_peak_memory_gib"] = r["peak_memory_gib"]
            # forward + backward is about 3 forward passes of arithmetic
            row["train_tflops"] = 3 * r["forward_gflops_per_sample"] * args.batch / r["train_step_s"] / 1e3
            if args.peak_tflops:
                row["mfu"] = row["train_tflops"] / args.peak_tflops
            if "peak_rss_gib" in r:
                row["peak_rss_gib"] = r["peak_rss_gib"]
        elif m == "train_paired":
            row["paired_step_ratios"] = r["pair_ratios"]
            row["paired_step_ratio"] = statistics.median(r["pair_ratios"])
        elif m == "train_memory":
            row["peak_memory_gib"] = r["peak_memory_gib"]
            row["peak_rss_gib"] = r["peak_rss_gib"]
        else:
            row[f"{m}_s"] = r["inference_s"]
            row[f"{m}_peak_memory_gib"] = r["peak_memory_gib"]
    return row


RATIOS = {"train_step_s": "train_step_ratio", "infer_s": "infer_ratio", "infer_mirrored_s": "infer_mirrored_ratio",
          "peak_memory_gib": "peak_memory_ratio", "default_malloc_peak_memory_gib": "default_malloc_peak_memory_ratio"}


# rounds whose ratios spread wider than this fraction of their median make the ratio unreliable
RATIO_TOLERANCE = 0.2


def combine_rounds(rounds: Sequence[Sequence[dict]]) -> List[dict]:
    """One row per network from several rounds of the same networks (each round: PlainConvUNet first).

    A measured figure is the median over the rounds; a ratio against PlainConvUNet is computed within
    each round and the median of those is reported, with every round's ratio kept in ``*_ratio_rounds``.
    The training-step ratio of a round is the median over that round's interleaved steps (``train_paired``:
    the two networks take turns step by step, so a load that comes and goes hits both), where measured.
    A ratio whose rounds spread (max - min) wider than :data:`RATIO_TOLERANCE` of their median is listed in the
    row's ``unreliable``: the machine's load changed the figure more than the networks did.
    """
    rows = []
    for i, first in enumerate(rounds[0]):
        same = [r[i] for r in rounds]
        row = {k: v for k, v in first.items()
               if (not isinstance(v, (int, float)) or isinstance(v, bool)) and k != "paired_step_ratios"}
        for key in {k for r in same for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}:
            values = [r[key] for r in same if key in r]
            row[key] = statistics.median(values)
        for key, ratio in RATIOS.items():
            if ratio == "train_step_ratio" and all("paired_step_ratio" in r for r in same) and i > 0:
                per_round = [r["paired_step_ratio"] for r in same]
                row["train_step_ratio_steps"] = [x for r in same for x in r["paired_step_ratios"]]
            else:
                per_round = [r[i][key] / r[0][key] for r in rounds if key in r[i] and key in r[0]]
            if per_round:
                row[ratio] = statistics.median(per_round)
                row[f"{ratio}_rounds"] = per_round
                spread = (max(per_round) - min(per_round)) / row[ratio] if row[ratio] else 0.0
                if len(per_round) > 1 and spread > RATIO_TOLERANCE:
                    row.setdefault("unreliable", {})[ratio] = round(spread, 3)
        errors = {m: e for r in same for m, e in r.get("errors", {}).items()}
        if errors:
            row["errors"] = errors
        rows.append(row)
    return rows


def unreliable_lines(rows: Sequence[dict]) -> List[str]:
    """A plain sentence for every ratio whose rounds disagree beyond :data:`RATIO_TOLERANCE`."""
    lines = []
    for row in rows:
        for ratio, spread in row.get("unreliable", {}).items():
            values = ", ".join(f"{v:.2f}" for v in row[f"{ratio}_rounds"])
            lines.append(f"UNRELIABLE: {row['network']}'s {ratio.replace('_', ' ')} {row[ratio]:.2f} is the median of "
                         f"rounds that disagree ({values}: a spread of {spread:.0%} of it, more than the "
                         f"{RATIO_TOLERANCE:.0%} tolerated). The machine's load changed during the run; measure again "
                         f"on a quiet machine before quoting it")
    return lines


def _summary(args, plan, patch, case, rounds: List[List[dict]], complete: bool) -> Dict:
    """The result document: run settings, and every network's row with its ratios against the first
    (PlainConvUNet), combined over the rounds measured so far (:func:`combine_rounds`)."""
    finished = [r for r in rounds if len(r) == len(rounds[0])] or rounds[:1]
    rows = combine_rounds(finished) if finished and finished[0] else []
    return {
        "patch_size": patch, "batch_size": args.batch, "case_shape": case, "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or platform.machine(),
        "torch": torch.__version__, "compiled": args.compile, "dtype": args.dtype if args.device == "cuda" else "fp32",
        "peak_tflops": args.peak_tflops, "strides": plan.network_arch_init_kwargs["strides"],
        "features_per_stage": plan.network_arch_init_kwargs["features_per_stage"], "complete": complete,
        "rounds": len(finished), "alternating": True, "ratio_tolerance": RATIO_TOLERANCE,
        "reliable": not any(r.get("unreliable") for r in rows), "results": rows,
    }


def _is_benchmark(path: Path) -> bool:
    """Whether ``path`` is a result this command wrote (``written_by``; older results by their fields)."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(document, dict) and (document.get("written_by") == COMMAND or
                                           {"patch_size", "rounds", "alternating", "results"} <= set(document))


def _write(path: str, result: Dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"written_by": COMMAND, **result}, f, indent=2)


def _cell(row: dict, key: str, fmt: str) -> str:
    return format(row[key], fmt) if row.get(key) is not None else "-"


def format_table(result: Dict) -> str:
    """Markdown tables of a benchmark result; ratios against PlainConvUNet (the first row)."""
    cpu = result["device"] != "cuda"
    mem = "peak RSS increase, freed blocks unmapped (GiB)" if cpu else "peak mem (GiB)"
    head = ["network", "patch", "params (M)", "GFLOP/sample", "train step (s)", "ratio", "TFLOP/s", "MFU",
            "inference (s)", "ratio", "inference, mirrored (s)", "ratio", f"train {mem}", "ratio",
            *(["glibc's default malloc (GiB)", "ratio"] if cpu else []), "memory-bound GB / step", "ratio"]
    lines = [f"median of {result.get('rounds', 1)} round(s) alternating between the networks (train step ratios: "
             f"of steps interleaved with the U-Net's); "
             f"plan patch {'x'.join(map(str, result['patch_size']))}, batch {result['batch_size']}, inference case "
             f"{'x'.join(map(str, result['case_shape']))}, {result['device']} ({result['device_name']}), torch "
             f"{result['torch']}, {result.get('dtype', 'fp16')}{', torch.compile' if result.get('compiled') else ''}"
             + (f"; MFU against {result['peak_tflops']:g} TFLOP/s" if result.get("peak_tflops") else ""), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["results"]:
        cells = [r["network"], "x".join(map(str, r["patch"])) if r.get("patch") else "-",
                 f"{r['parameters'] / 1e6:.2f}" if "parameters" in r else "-",
                 _cell(r, "forward_gflops_per_sample", ".1f"), _cell(r, "train_step_s", ".3f"),
                 _cell(r, "train_step_ratio", ".2f"), _cell(r, "train_tflops", ".2f"), _cell(r, "mfu", ".1%"),
                 _cell(r, "infer_s", ".2f"), _cell(r, "infer_ratio", ".2f"),
                 _cell(r, "infer_mirrored_s", ".2f"), _cell(r, "infer_mirrored_ratio", ".2f"),
                 _cell(r, "peak_memory_gib", ".2f"), _cell(r, "peak_memory_ratio", ".2f"),
                 *([_cell(r, "default_malloc_peak_memory_gib", ".2f"), _cell(r, "default_malloc_peak_memory_ratio", ".2f")]
                   if cpu else []),
                 f"{r['traffic']['other_bytes'] / 1e9:.1f}" if "traffic" in r else "-", _cell(r, "other_bytes_ratio", ".2f")]
        lines.append("| " + " | ".join(cells) + " |")
        for m, err in r.get("errors", {}).items():
            lines.append(f"\n{r['network']} {m}: {err}")
    warnings = unreliable_lines(result["results"])
    if warnings:
        lines += [""] + warnings
    if result.get("attention"):
        lines += ["", "| stage | kind | windows | tokens | heads x dim | plain (ms) | D-MSA (ms) | ratio |",
                  "|---|---|---|---|---|---|---|---|"]
        for a in result["attention"]:
            lines.append(f"| {a['stage']} | {a['kind']} | {a['windows']} | {a['tokens']} | {a['heads']}x{a['head_dim']} "
                         f"| {1e3 * a['plain_s']:.2f} | {1e3 * a['dmsa_s']:.2f} | {a['ratio']:.2f} |")
    if result.get("memory_model"):
        mm = result["memory_model"]
        lines += ["", "| network | patch | estimate x batch (M) | measured (GiB) |", "|---|---|---|---|"]
        for p in mm["points"]:
            lines.append(f"| {p['network']} | {'x'.join(map(str, p['patch']))} | {p['estimate'] / 1e6:.1f} | "
                         f"{p['peak_memory_gib']:.3f} |")
        lines.append("\nPearson r (estimate vs measured): " + ", ".join(
            f"{n} {v['pearson_r']:.3f}" for n, v in mm["per_network"].items() if v["pearson_r"] is not None)
            + (f"; pooled {mm['pooled_pearson_r']:.3f}" if mm["pooled_pearson_r"] is not None else ""))
    return "\n".join(lines)


def entry(argv: Optional[Sequence[str]] = None) -> int:
    """Console command ``dyntransnet_benchmark``: Ctrl-C or SIGTERM stop the measuring child too (exit 130 / 143);
    an ``--out`` keeps the rounds measured so far, marked ``"complete": false``."""
    import sys

    from nnunet_dyntransnet.utilities.staging import exit_code_of, sigterm_raises

    try:
        with sigterm_raises():
            main(argv)
    except KeyboardInterrupt as e:
        print(f"{COMMAND}: {str(e) or 'interrupted (Ctrl-C)'}; the measuring child was stopped", file=sys.stderr)
        return exit_code_of(e)
    return 0


if __name__ == "__main__":
    entry()
