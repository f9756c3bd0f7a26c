"""The screens' summary table, rendered from the committed reports, so that no number in the README is typed.

    python docs/comparison/screens/table.py epochs RESULTS_DIR OUT.json   # epochs each fold trained (its logs)
    python docs/comparison/screens/table.py seconds RESULTS_DIR OUT.json  # seconds those epochs took
    python docs/comparison/screens/table.py epochs RESULTS_DIR OUT.json --only TRAINER --scored SCREEN TRAINER ...
        # TRAINER's from its logs, the others' from the committed SCREEN's epochs.json (dyntransnet_report --scored)
    python docs/comparison/screens/table.py table                         # print the table of every screen
    python docs/comparison/screens/table.py pooled TRAINER BASELINE SCREEN ...  # one row over several screens' folds
    python docs/comparison/screens/table.py check README.md               # exit 1 if README's table differs

A screen is a folder beside this file holding a report of ``dyntransnet_report`` (``summary.json``) and
``epochs.json``; ``SCREENS`` names them in order.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
# (folder, what it varies); the first trainer of each report is its baseline
SCREENS = [("lits_unet", "the phantom: nnU-Net's U-Net alone, 8 minutes per fold, 5 folds"),
           ("recipe", "the recipe, 16 epochs of 50 steps, folds 0-2"),
           ("conv_stages", "conv_stages=2 with the SGD recipe, 16 epochs of 50 steps, folds 0-1 (the default row: 0-2)"),
           ("lits_unet32", "the phantom again: nnU-Net's U-Net alone, 32 epochs of 50 steps per fold, 5 folds"),
           ("equal_time", "equal time: the U-Net's 32 epochs against DynTransNet's 31 (its epoch takes 1.02-1.03x)"),
           ("equal_time_conv2", "equal time, conv_stages=2 beside the default: 31 epochs each against the U-Net's 32"),
           ("blocks_per_stage", "the plan's two transformer blocks per stage against one (conv_stages=2), 31 epochs"),
           ("ablation_baseline", "the paper's baseline (MSA, concatenation, no RM) against the full model, 31 epochs"),
           ("ablation_fmm", "the full model without FM-M (concatenation) against it, 31 epochs"),
           ("ablation_rm", "the full model without RM's residual connection against it, 31 epochs"),
           ("rm_post", "the full model with RM's nonlinearity after its residual sum against it, 31 epochs"),
           ("rm_decoder", "the full model with RM's residual adding back the upsampled decoder map, 31 epochs"),
           ("ablation_dmsa", "the full model with plain MSA instead of D-MSA against it, 31 epochs"),
           ("recipe_adam", "the paper's Adam at lr 1e-4 in place of nnU-Net's SGD, 31 epochs"),
           ("init_fan_in", "the transformer linears from torch's fan-in init against ViT's std 0.02, 31 epochs"),
           ("equal_time_fanin", "equal time, the fan-in init beside the default: 31 epochs each against the U-Net's 32"),
           ("optimizer_per_part", "SGD for the convolutions and AdamW for the transformer stages against SGD, 31 epochs"),
           ("equal_time_per_part", "equal time, the optimizer per part beside the default: 31 epochs each against the U-Net's 32"),
           ("ablation_dmsa_per_part", "plain MSA against D-MSA, both with the optimizer per part, 31 epochs"),
           ("deep_supervision", "no deep supervision against deep supervision, 31 epochs"),
           ("patch_embedding", "overlapping patch embeddings (kernel 3 at stride 2) against non-overlapping, 31 epochs"),
           ("window", "windowed attention in stage 2 against global attention everywhere, 31 epochs"),
           ("decoder_units", "one conv unit in RM against two, 31 epochs"),
           ("equal_time_dec1", "equal time, one conv unit in RM: 38 epochs against the U-Net's 32 and the default's 31"),
           ("equal_time_overlap", "equal time, overlapping patch embeddings: 24 epochs against the U-Net's 32 and the "
                                  "default's 31"),
           ("patch_embedding_fold3", "overlapping patch embeddings against non-overlapping on a fourth fold (the "
                                     "default's row from equal_time_conv2), 31 epochs"),
           ("heads", "16 channels per attention head against 32 (twice the heads), fold 0 (the default's row from "
                     "equal_time_conv2), 31 epochs"),
           ("warmup", "nnU-Net's warm-up over a tenth of the epochs against the full rate from the first step, folds "
                      "0-2 (the default's and the U-Net's rows from equal_time_conv2), 31 epochs: equal time"),
           ("equal_time_warmup", "equal time, nnU-Net's warm-up beside the default and the U-Net: 31 epochs (the "
                                 "same network) against the U-Net's 32, folds 0-4"),
           ("equal_time_lr2e2", "equal time, nnU-Net's SGD at 2e-2 beside the default (1e-2) and the U-Net: 31 "
                                "epochs (the same network) against the U-Net's 32, folds 0-4")]
BEGIN, END = "<!-- screens table: begin -->", "<!-- screens table: end -->"


def _epoch_times(results: Path) -> dict:
    """Per trainer folder and fold, the seconds of every epoch its training logs show finished (nnU-Net's
    'Epoch time' lines; a fold continued with --c has several logs)."""
    found = {}
    for log in sorted(results.glob("*/*__*/fold_*/training_log_*.txt")):
        trainer, fold = log.parent.parent.name.split("__")[0], log.parent.name
        found.setdefault(trainer, {}).setdefault(fold, []).extend(
            float(line.rsplit("Epoch time:", 1)[1].split()[0]) for line in log.read_text().splitlines()
            if "Epoch time:" in line)
    return found


def _write(found: dict, out: Path) -> None:
    out.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")


def _epochs(results: Path) -> dict:
    """Per trainer folder and fold, the epochs its training logs show finished."""
    return {t: {f: len(times) for f, times in folds.items()} for t, folds in _epoch_times(results).items()}


def _seconds(results: Path) -> dict:
    """Per trainer folder and fold, the seconds its epochs took (summed)."""
    return {t: {f: round(sum(times), 1) for f, times in folds.items()} for t, folds in _epoch_times(results).items()}


def epochs(results: Path, out: Path) -> None:
    """Per trainer folder and fold, the epochs its training logs show finished."""
    _write(_epochs(results), out)


def seconds(results: Path, out: Path) -> None:
    """Per trainer folder and fold, the seconds its epochs took (summed): the training time each network got, for a
    screen that gives the networks equal time in epochs."""
    _write(_seconds(results), out)


def with_scored(kind: str, results: Path, out: Path, only: str, screen: str, scored: list) -> None:
    """``kind`` (epochs or seconds) of ``only``'s folds from its logs under ``results``, and of the ``scored``
    trainers over the same folds from the committed screen ``screen`` (its ``kind.json``): the rows of a report that
    scored them from that screen's report (``dyntransnet_report --scored``) instead of training them again. Nothing
    is written when a row is missing."""
    found = {"epochs": _epochs, "seconds": _seconds}[kind](results)
    if only not in found:
        raise SystemExit(f"table.py: {only} has no training log under {results}")
    committed = json.loads((HERE / screen / f"{kind}.json").read_text())
    missing = [t for t in scored if t not in committed]
    if missing:
        raise SystemExit(f"table.py: {HERE / screen / (kind + '.json')} has no row {', '.join(missing)}")
    folds = found[only]  # the scored rows over the folds trained here (their report scores only these folds' cases)
    _write({only: folds, **{t: {f: v for f, v in committed[t].items() if f in folds} for t in scored}}, out)


def pooled(screens: list, trainer: str, baseline: str) -> dict:
    """``trainer`` against ``baseline`` over the cases of several screens that ran them on different folds (the same
    two trainers, the same training each, e.g. folds 0-2 in one session and 3-4 in another), per class: the paired
    difference in Dice points, its n and paired t-test p, as one report over all those cases would give them; and the
    lesions pooled (matched/ref/pred of each). A case in two of the screens is refused: they must not overlap."""
    from nnunet_dyntransnet.evaluation.stats import paired_t_test

    rows: dict = {trainer: {}, baseline: {}}
    lesions = {t: [0, 0, 0] for t in rows}
    classes = None
    for screen in screens:
        summary = json.loads((HERE / screen / "summary.json").read_text())
        classes = classes or summary["classes"]
        for t in rows:
            twice = set(rows[t]) & set(summary["per_case"][t])
            if twice:
                raise SystemExit(f"table.py pooled: {sorted(twice)[0]} is in two of the screens {screens}")
            rows[t].update(summary["per_case"][t])
            found = summary["anchors"][t]["lesions"]
            lesions[t] = [total + found[k] for total, k in zip(lesions[t], ("matched", "ref", "pred"))]
    found = {"lesions": {t: "/".join(map(str, v)) for t, v in lesions.items()}}
    for cls in classes:
        pairs = [(rows[trainer][c][cls]["dice"], rows[baseline][c][cls]["dice"]) for c in rows[trainer]
                 if c in rows[baseline] and None not in (rows[trainer][c][cls]["dice"], rows[baseline][c][cls]["dice"])]
        if not pairs:  # no case both define (a class neither predicted)
            found[cls] = {"points": None, "n": 0, "p": None}
            continue
        a, b = zip(*pairs)
        found[cls] = {"points": 100 * sum(x - y for x, y in pairs) / len(pairs), "n": len(pairs),
                      "p": paired_t_test(a, b)}
    return found


def _fold_means(summary: dict, trainer: str, cls: str) -> dict:
    per_fold = {}
    for case, fold in summary["folds"][trainer].items():
        dice = summary["per_case"][trainer][case][cls]["dice"]
        if dice is not None:
            per_fold.setdefault(fold, []).append(dice)
    return {fold: 100 * sum(v) / len(v) for fold, v in sorted(per_fold.items())}


def paired_difference(summary: dict, trainer: str, baseline: str, cls: str):
    """``(points, n)``: the mean Dice of ``trainer`` minus ``baseline`` over the ``n`` cases both define, or None
    without such a case. Unlike the difference of the two means it never counts a case for one network only (a
    tumor-free case one leaves empty, Dice undefined, and the other marks, Dice 0). Computed from the per-case
    scores, since reports written before ``dyntransnet_report`` computed ``mean_difference`` lack it."""
    a, b = summary["per_case"][trainer], summary["per_case"][baseline]
    pairs = [(a[c][cls]["dice"], b[c][cls]["dice"]) for c in a
             if c in b and a[c][cls]["dice"] is not None and b[c][cls]["dice"] is not None]
    return (100 * sum(x - y for x, y in pairs) / len(pairs), len(pairs)) if pairs else None


def _paired_difference(summary: dict, trainer: str, cls: str) -> str:
    """The table's cell: the paired difference against the report's baseline, "-" for the baseline itself."""
    found = None if trainer == summary["baseline"] else paired_difference(summary, trainer, summary["baseline"], cls)
    return "-" if found is None else f"{found[0]:+.2f} (n={found[1]})"


def _lesions(summary: dict, trainer: str) -> str:
    lesions = (summary.get("anchors") or {}).get(trainer, {}).get("lesions")
    return "-" if not lesions else f"{lesions['matched']}/{lesions['ref']}/{lesions['pred']}"


def _p(stat: dict) -> str:
    p = stat.get("p_ttest")
    return "-" if p is None else ("<0.0001" if p < 1e-4 else f"{p:.4f}")


def table() -> str:
    rows = ["| screen | trainer | epochs per fold | liver Dice | paired Δ | p | tumor Dice | paired Δ | p | "
            "tumor lesions matched/ref/pred | liver Dice per fold | tumor Dice per fold |", "|---" * 12 + "|"]
    for folder, what in SCREENS:
        path = HERE / folder
        if not (path / "summary.json").is_file():
            continue
        summary = json.loads((path / "summary.json").read_text())
        trained = json.loads((path / "epochs.json").read_text())
        for trainer, stats in summary["statistics"].items():
            liver, tumor = stats["liver"]["dice"], stats["tumor"]["dice"]
            folds = _fold_means(summary, trainer, "liver"), _fold_means(summary, trainer, "tumor")
            n_epochs = " / ".join(str(trained.get(trainer, {}).get(f, "?")) for f in folds[0])
            rows.append(f"| {folder} | {trainer} | {n_epochs} | {100 * liver['mean']:.2f} | "
                        f"{_paired_difference(summary, trainer, 'liver')} | {_p(liver)} | {100 * tumor['mean']:.2f} | "
                        f"{_paired_difference(summary, trainer, 'tumor')} | {_p(tumor)} | {_lesions(summary, trainer)} | "
                        + " / ".join(f"{v:.1f}" for v in folds[0].values()) + " | "
                        + " / ".join(f"{v:.1f}" for v in folds[1].values()) + " |")
    return "\n".join(rows)


def check(readme: Path) -> int:
    text = readme.read_text()
    m = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), text, re.S)
    if not m or m.group(1).strip() != table().strip():
        print(f"{readme}: the table between {BEGIN} and {END} is not the one the committed reports give; "
              f"run python {Path(__file__).as_posix()} table", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "table"
    if command in ("epochs", "seconds") and "--only" in sys.argv:
        # epochs|seconds RESULTS_DIR OUT.json --only TRAINER --scored SCREEN TRAINER ...
        only, screen = sys.argv[sys.argv.index("--only") + 1], sys.argv[sys.argv.index("--scored") + 1]
        with_scored(command, Path(sys.argv[2]), Path(sys.argv[3]), only, screen,
                    sys.argv[sys.argv.index("--scored") + 2:])
    elif command == "epochs":
        epochs(Path(sys.argv[2]), Path(sys.argv[3]))
    elif command == "seconds":
        seconds(Path(sys.argv[2]), Path(sys.argv[3]))
    elif command == "pooled":
        print(json.dumps(pooled(sys.argv[4:], sys.argv[2], sys.argv[3]), indent=1))
    elif command == "check":
        sys.exit(check(Path(sys.argv[2])))
    else:
        print(table())
