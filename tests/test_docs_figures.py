"""Figures in the docs that are rendered from committed result files must be what those files give."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TABLE = _module(ROOT / "docs" / "comparison" / "screens" / "table.py")


def test_the_screens_table_is_the_committed_reports():
    assert TABLE.check(ROOT / "docs" / "comparison" / "screens" / "README.md") == 0
    rendered = TABLE.table()
    assert rendered.count("\n") >= 2, "at least one screen is committed"
    for folder, _ in TABLE.SCREENS:
        if (TABLE.HERE / folder / "summary.json").is_file():
            assert f"| {folder} |" in rendered


def _json(relative: str) -> dict:
    import json

    return json.loads((ROOT / relative).read_text())


def _row(document: dict, network: str) -> dict:
    return next(r for r in document["results"] if r["network"] == network)


CPU = "measurements/results/cpu_2026-11-30/"


SCREENS = "docs/comparison/screens/"
EQUAL_TIME_CONV2 = SCREENS + "equal_time_conv2/summary.json"


def _equal_time(cls: str, trainer: str, summary: str) -> str:
    """'DynTransNet's Dice against the U-Net's, p = ...' of an equal-time comparison, as the README writes it."""
    statistics = _json(summary)["statistics"]
    mine, unet = statistics[trainer][cls]["dice"], statistics["nnUNetTrainer_WallClock_NoMirroring"][cls]["dice"]
    return f"{100 * mine['mean']:.2f} against {100 * unet['mean']:.2f}, p = {mine['p_ttest']:.2f}"


def _conv2_figures() -> tuple:
    """conv_stages=2 at equal time: its tumor Dice, the default's, p against the default, the U-Net's; the same for
    liver without the U-Net's (equal_time_conv2 and its vs_default report)."""
    folder = SCREENS + "equal_time_conv2/"
    both, paired = _json(folder + "summary.json")["statistics"], _json(folder + "vs_default/summary.json")["statistics"]
    conv2, default = "nnUNetTrainerDynTransNet_Conv2_NoMirroring", "nnUNetTrainerDynTransNet_NoMirroring"
    mean = lambda trainer, cls: 100 * both[trainer][cls]["dice"]["mean"]
    return (mean(conv2, "tumor"), mean(default, "tumor"), paired[conv2]["tumor"]["dice"]["p_ttest"],
            mean("nnUNetTrainer_WallClock_NoMirroring", "tumor"), mean(conv2, "liver"), mean(default, "liver"),
            paired[conv2]["liver"]["dice"]["p_ttest"])


def _equal_time_anchors() -> tuple:
    """The report's pooled figures (global Dice, lesion counts) of conv_stages=2 and of the U-Net at equal time."""
    anchors = _json(SCREENS + "equal_time_conv2/summary.json")["anchors"]
    return anchors["nnUNetTrainerDynTransNet_Conv2_NoMirroring"], anchors["nnUNetTrainer_WallClock_NoMirroring"]


def _lesions_at_equal_time() -> str:
    """The screens README's lesion sentence, from equal_time_conv2's anchors (global Dice, lesion counts)."""
    conv2, unet = _equal_time_anchors()
    return ("same global tumor Dice (all cases' voxels pooled: {:.2f} and {:.2f}, `equal_time_conv2`) and find as many "
            "of the {} lesions ({} and {} matched), but DynTransNet predicts {} lesions to the U-Net's {} (lesion "
            "precision {:.2f}% against {:.2f}%)").format(
        100 * conv2["global_dice"]["tumor"], 100 * unet["global_dice"]["tumor"], conv2["lesions"]["ref"],
        conv2["lesions"]["matched"], unet["lesions"]["matched"], conv2["lesions"]["pred"], unet["lesions"]["pred"],
        100 * conv2["lesions"]["precision"], 100 * unet["lesions"]["precision"])


def _fold_means(summary: dict, trainer: str) -> dict:
    return TABLE._fold_means(summary, trainer, "tumor")


def _paired(summary: dict, row: str, baseline: str, cls: str) -> tuple:
    """The mean Dice difference of ``row`` minus ``baseline`` in points over the cases both define, and their number
    (the screens table's, :func:`table.paired_difference`)."""
    return TABLE.paired_difference(summary, row, baseline, cls)


def _against(screen: str, row: str, baseline: str, false_positives: str = "") -> dict:
    """A screen row's figures against ``baseline``: paired Dice difference in points, t-test p and cases paired per
    class (``liver``, ``p_liver``, ``n_liver``, the same for tumor), its lesions (``pred``, ``ref``) and the
    baseline's ``pred_base``; with ``false_positives`` (a file of ``false_positive_lesions.py``) both rows'
    false-positive components (``fp``, ``fp_base``)."""
    summary = _json(SCREENS + screen + "/summary.json")
    figures = {}
    for cls in ("liver", "tumor"):
        figures[cls], figures["n_" + cls] = _paired(summary, row, baseline, cls)
        figures["p_" + cls] = summary["statistics"][row][cls]["dice"]["p_ttest"]
    lesions = summary["anchors"]
    figures.update(pred=lesions[row]["lesions"]["pred"], ref=lesions[row]["lesions"]["ref"],
                   pred_base=lesions[baseline]["lesions"]["pred"])
    if false_positives:
        found = _json(SCREENS + "rm_logit_split/" + false_positives)["trainers"]
        figures.update(fp=found[row]["false_positive_components"], fp_base=found[baseline]["false_positive_components"])
    return figures


def _fold_dice(summary: dict, rows: dict) -> dict:
    """Each fold's Dice as the screens table prints it (one decimal) for ``rows`` ({key prefix: trainer}): keys are
    the prefix, the class's initial and the fold's number (``t0``: tumor, fold 0; ``l0``: liver)."""
    return {f"{prefix}{cls[0]}{fold[-1]}": "{:.1f}".format(value) for prefix, trainer in rows.items()
            for cls in ("liver", "tumor") for fold, value in TABLE._fold_means(summary, trainer, cls).items()}


def _warmup_folds() -> dict:
    """The warm-up screen's Dice per fold (:func:`_fold_dice`), the warm-up's (``w``) and the default's (``d``)."""
    return _fold_dice(_json(SCREENS + "warmup/summary.json"), {"w": WARMUP, "d": FULL})


def _warmup_against_default() -> dict:
    """The warm-up's figures against the default (:func:`_against`) and the U-Net's predicted lesions (``unet``) over
    the same folds."""
    unet = _json(SCREENS + "warmup/summary.json")["anchors"]["nnUNetTrainer_WallClock_NoMirroring"]["lesions"]["pred"]
    return dict(_against("warmup", WARMUP, FULL), unet=unet)


def _recipe_at_equal_time(screen: str, row: str) -> dict:
    """A recipe over five folds against the default (``report_equal_time.sh``; the same network, so the same 31
    epochs are equal time): its figures against the default (``vs_default``, with the false-positive components),
    against the U-Net (``u_`` + the same keys), the matched lesions (``matched``, the default's ``matched_base``), the
    U-Net's predicted lesions (``unet``) and each fold's Dice as the table prints it (``t0`` ... ``t4`` tumor, ``l0``
    ... liver; the default's ``dt0`` ..., ``dl0`` ...)."""
    assert set(_json(SCREENS + screen + "/epochs.json")[row].values()) == {31}, "the default's epochs: equal time"
    summary = _json(SCREENS + screen + "/summary.json")
    lesions = {t: a["lesions"] for t, a in summary["anchors"].items()}
    figures = dict(_against(screen + "/vs_default", row, FULL, "false_positive_lesions_folds0-4.json"),
                   **{"u_" + k: v for k, v in _against(screen, row, "nnUNetTrainer_WallClock_NoMirroring").items()},
                   matched=lesions[row]["matched"], matched_base=lesions[FULL]["matched"],
                   unet=lesions["nnUNetTrainer_WallClock_NoMirroring"]["pred"])
    return dict(figures, **_fold_dice(summary, {"": row, "d": FULL}))


def _warmup_equal_time() -> dict:
    """The warm-up over five folds (:func:`_recipe_at_equal_time`)."""
    return _recipe_at_equal_time("equal_time_warmup", WARMUP)


def _lr_equal_time() -> dict:
    """Twice nnU-Net's learning rate over five folds (:func:`_recipe_at_equal_time`)."""
    return _recipe_at_equal_time("equal_time_lr2e2", "nnUNetTrainerDynTransNet_LR2e2_NoMirroring")


def _tumor_free(summary: dict, row: str, full: str) -> tuple:
    """How many validation cases have no tumor, in how many the row predicted none while the full model did."""
    free = [c for c, m in summary["per_case"][full].items() if m["tumor"]["n_ref"] == 0]
    return len(free), sum(1 for c in free if summary["per_case"][row][c]["tumor"]["n_pred"] == 0
                          and summary["per_case"][full][c]["tumor"]["n_pred"] > 0)


def _ablation_baseline() -> tuple:
    """The screens README's ablation_baseline sentences: the Dice of the baseline row and of the full model, and
    their lesions."""
    summary = _json(SCREENS + "ablation_baseline/summary.json")
    base, full = "nnUNetTrainerDynTransNet_Baseline_NoMirroring", "nnUNetTrainerDynTransNet_Conv2_NoMirroring"
    stats, lesions = summary["statistics"], {t: summary["anchors"][t]["lesions"] for t in (base, full)}
    return ("tumor Dice {:.2f} against the full model's {:.2f} as means over the cases each defines").format(
        100 * stats[base]["tumor"]["dice"]["mean"], 100 * stats[full]["tumor"]["dice"]["mean"]) + (
        " (higher on both folds, {} against {}), but the two means count different cases: of the {} tumor-free cases "
        "the baseline left {} empty (no Dice) where the full model marked false positives (Dice 0). Paired over the "
        "cases both define the difference is {:+.2f} points (n = {}, p = {:.2f})").format(
        *(" / ".join(f"{v:.1f}" for v in _fold_means(summary, t).values()) for t in (base, full)),
        *_tumor_free(summary, base, full), *_paired(summary, base, full, "tumor"),
        stats[base]["tumor"]["dice"]["p_ttest"]), \
        ("Its lesions: {} predicted for {} (precision {:.2f}%, the U-Net's level) against the full "
                     "model's {} ({:.2f}%)").format(lesions[base]["pred"], lesions[base]["ref"],
                                                    100 * lesions[base]["precision"], lesions[full]["pred"],
                                                    100 * lesions[full]["precision"])


def _ablation_fmm() -> str:
    """The screens README's FM-M sentence: the Dice and p of the row without FM-M against the full model, its lesions."""
    summary = _json(SCREENS + "ablation_fmm/summary.json")
    row, full = "nnUNetTrainerDynTransNet_DMSA_RM_NoMirroring", "nnUNetTrainerDynTransNet_Conv2_NoMirroring"
    stats, lesions = summary["statistics"], summary["anchors"][row]["lesions"]
    dice = lambda t, c: 100 * stats[t][c]["dice"]["mean"]
    return ("tumor Dice {:.2f} against {:.2f} (higher on both folds, p = {:.2f}), liver {:.2f} against {:.2f} (p = {:.2f}), "
            "and still {} predicted lesions for {} (precision {:.2f}%)").format(
        dice(row, "tumor"), dice(full, "tumor"), stats[row]["tumor"]["dice"]["p_ttest"], dice(row, "liver"),
        dice(full, "liver"), stats[row]["liver"]["dice"]["p_ttest"], lesions["pred"], lesions["ref"],
        100 * lesions["precision"])


def _count(name: str, network: str, key: str) -> float:
    """One ratio of one row of a file in the CPU results folder."""
    return _row(_json(CPU + name), network)[key]


NO_SELECTIVE = "DynTransNet[selective_checkpointing=False]"


def _change(key: str, before: tuple, after: tuple) -> str:
    """'a -> b': one ratio of two rows, each given as (file in the CPU results folder, network)."""
    return f"{_count(*before, key):.2f} -> {_count(*after, key):.2f}"


def _ratios(name: str, network: str) -> str:
    """Train step / inference / peak memory of one row, as docs/network.md writes them."""
    return " / ".join(f"{_count(name, network, k):.2f}" for k in ("train_step_ratio", "infer_ratio", "peak_memory_ratio"))
NARROW = CPU + "narrow_defaults_rounds5.json"
# the default since 2026-12-06 (conv_stages=2), measured the day before as its variant
TODAY = "measurements/results/cpu_2026-12-06/"
DEFAULT_NOW = (TODAY + "conv_stages_32x64x64_rounds5.json", "DynTransNet[conv_stages=2]")
NARROW_NOW = (TODAY + "conv_stages_narrow_rounds5.json", "DynTransNet[conv_stages=2]")
COUNT_NOW = (TODAY + "traffic_and_count_128_conv2.json", "DynTransNet")


def _ablation_rm() -> str:
    """The screens README's RM sentence: the row without RM's residual against the full model, its lesions."""
    summary = _json(SCREENS + "ablation_rm/summary.json")
    row, full = "nnUNetTrainerDynTransNet_DMSA_FMM_NoMirroring", "nnUNetTrainerDynTransNet_Conv2_NoMirroring"
    stats, lesions = summary["statistics"], {t: summary["anchors"][t]["lesions"] for t in (row, full)}
    dice = lambda t, c: 100 * stats[t][c]["dice"]["mean"]
    return ("tumor Dice {:.2f} against {:.2f} (paired {:+.2f} points, n = {}, p = {:.2f}), liver {:.2f} against {:.2f} "
            "(p = {:.2f}), and {} predicted lesions for {} (precision {:.2f}%) against the full model's {} ({:.2f}%). RM's "
            "residual makes part of the false-positive lesions, not all: without it the network still marks all {} of "
            "the tumor-free cases").format(
        dice(row, "tumor"), dice(full, "tumor"), *_paired(summary, row, full, "tumor"),
        stats[row]["tumor"]["dice"]["p_ttest"], dice(row, "liver"), dice(full, "liver"),
        stats[row]["liver"]["dice"]["p_ttest"], lesions[row]["pred"], lesions[row]["ref"],
        100 * lesions[row]["precision"], lesions[full]["pred"], 100 * lesions[full]["precision"],
        sum(1 for m in summary["per_case"][row].values() if m["tumor"]["n_ref"] == 0 and m["tumor"]["n_pred"] > 0))


def _rm_logit_split() -> str:
    """How many folds read tumor from RM's shortcut term, how many from its units' term (rm_logit_split)."""
    folds = _json(SCREENS + "rm_logit_split/conv2_folds0-4.json")["folds_groups"].values()
    tumor = [f["true tumor"] for f in folds]
    shortcut = sum(1 for t in tumor if t["median tumor-minus-background logit from RM's shortcut"]
                   > t["median tumor-minus-background logit from RM's units"])
    words = {2: "two", 3: "three"}
    return ("takes tumor from the sum's shortcut term alone on {} folds of {} (FM-M's 1x1 mix, through no spatial "
            "convolution at full resolution) and from the units' term on the other {}").format(
        words[shortcut], ["", "", "", "", "four", "five"][len(tumor)], words[len(tumor) - shortcut])


def _false_positive_components() -> str:
    found = _json(SCREENS + "rm_logit_split/false_positive_lesions_folds0-1.json")["trainers"]
    full, unet = found["nnUNetTrainerDynTransNet_Conv2_NoMirroring"], found["nnUNetTrainer_WallClock_NoMirroring"]
    return ("the full model makes {} false-positive tumor components against the U-Net's {}, {:.0f}% of them single "
            "voxels (the U-Net's {:.0f}%), at a median {:.2f} voxels outside the liver (the U-Net's {:.2f}").format(
        full["false_positive_components"], unet["false_positive_components"], 100 * full["single_voxel_share"],
        100 * unet["single_voxel_share"], full["distance_to_liver_voxels_median"], unet["distance_to_liver_voxels_median"])


def _rm_post() -> str:
    summary = _json(SCREENS + "rm_post/summary.json")
    row, full = "nnUNetTrainerDynTransNet_RMPost_NoMirroring", "nnUNetTrainerDynTransNet_Conv2_NoMirroring"
    stats = summary["statistics"][row]
    found = _json(SCREENS + "rm_logit_split/false_positive_lesions_fold0.json")["trainers"]
    p = lambda v: "< 0.0001" if v < 1e-4 else f"= {v:.4f}"  # noqa: E731
    return ("liver Dice paired {:+.2f} points (p {}), tumor {:+.2f} (p {}), and {} false-positive tumor components "
            "against the full model's {}").format(
        _paired(summary, row, full, "liver")[0], p(stats["liver"]["dice"]["p_ttest"]),
        _paired(summary, row, full, "tumor")[0], p(stats["tumor"]["dice"]["p_ttest"]),
        found[row]["false_positive_components"], found[full]["false_positive_components"])


def _left_empty_by_the_unet_alone() -> list:
    """The tumor-free cases of equal_time_conv2 where the U-Net predicted no tumor (no Dice) and DynTransNet did: the
    cases that make the gap between the two tumor means."""
    per_case = _json(EQUAL_TIME_CONV2)["per_case"]
    a, b = per_case["nnUNetTrainerDynTransNet_Conv2_NoMirroring"], per_case["nnUNetTrainer_WallClock_NoMirroring"]
    only_unet_empty = [c for c in a if a[c]["tumor"]["n_ref"] == 0 and b[c]["tumor"]["n_pred"] == 0]
    assert all(a[c]["tumor"]["n_pred"] > 0 for c in only_unet_empty)
    return only_unet_empty


def _equal_time_paired() -> str:
    """The README's paired tumor difference at equal time, and the tumor-free cases that only the U-Net left empty."""
    summary = _json(EQUAL_TIME_CONV2)
    conv2, unet = "nnUNetTrainerDynTransNet_Conv2_NoMirroring", "nnUNetTrainer_WallClock_NoMirroring"
    a, only_unet_empty = summary["per_case"][conv2], _left_empty_by_the_unet_alone()
    return ("paired over the cases both define, DynTransNet's tumor Dice is {:+.2f} points (n = {}); the gap of the "
            "means is {} tumor-free case where the U-Net predicted no tumor (no Dice, as in nnU-Net's evaluation) and "
            "DynTransNet {} voxels (Dice 0)").format(
        *_paired(summary, conv2, unet, "tumor"), len(only_unet_empty),
        " and ".join(str(a[c]["tumor"]["n_pred"]) for c in only_unet_empty))


def _short_of_the_unet() -> str:
    """The README's plain result: how far DynTransNet's means fall short of the U-Net's at equal time, the paired tumor
    difference, and both networks' predicted lesions (equal_time_conv2)."""
    statistics = _json(EQUAL_TIME_CONV2)["statistics"]
    conv2, unet = "nnUNetTrainerDynTransNet_Conv2_NoMirroring", "nnUNetTrainer_WallClock_NoMirroring"
    gap = {c: 100 * (statistics[unet][c]["dice"]["mean"] - statistics[conv2][c]["dice"]["mean"]) for c in ("liver", "tumor")}
    anchors = _equal_time_anchors()
    assert len(_left_empty_by_the_unet_alone()) == 1, "the README says one tumor-free case makes the gap"
    return ("falls short of the U-Net by {:.2f} points of liver Dice and {:.2f} of tumor Dice in the means (paired over the "
            "cases both define, tumor {:+.2f}: one tumor-free case makes the gap), and DynTransNet predicts {} lesions to "
            "the U-Net's {} for {} real ones").format(
        gap["liver"], gap["tumor"], _paired(_json(EQUAL_TIME_CONV2), conv2, unet, "tumor")[0],
        anchors[0]["lesions"]["pred"], anchors[1]["lesions"]["pred"], anchors[1]["lesions"]["ref"])


def _rm_decoder() -> str:
    summary = _json(SCREENS + "rm_decoder/summary.json")
    row, full = "nnUNetTrainerDynTransNet_RMDecoder_NoMirroring", "nnUNetTrainerDynTransNet_Conv2_NoMirroring"
    stats, lesions = summary["statistics"], {t: summary["anchors"][t]["lesions"] for t in (row, full)}
    found = _json(SCREENS + "rm_logit_split/false_positive_lesions_folds0-2.json")["trainers"]
    dice = lambda t, c: 100 * stats[t][c]["dice"]["mean"]  # noqa: E731
    return ("tumor Dice {:.2f} against {:.2f} (paired {:+.2f} points, n = {}, p = {:.2f}; higher on folds 0 and 1, "
            "lower on fold 2), liver {:.2f} against {:.2f} (paired {:+.2f}, p = {:.2f}), and {} predicted lesions for "
            "{} against {}; {} false-positive components against the full model's {}").format(
        dice(row, "tumor"), dice(full, "tumor"), *_paired(summary, row, full, "tumor"),
        stats[row]["tumor"]["dice"]["p_ttest"], dice(row, "liver"), dice(full, "liver"),
        _paired(summary, row, full, "liver")[0], stats[row]["liver"]["dice"]["p_ttest"], lesions[row]["pred"],
        lesions[row]["ref"], lesions[full]["pred"], found[row]["false_positive_components"],
        found[full]["false_positive_components"])


def _ablation_dmsa() -> str:
    summary = _json(SCREENS + "ablation_dmsa/summary.json")
    row, full = "nnUNetTrainerDynTransNet_FMM_RM_NoMirroring", "nnUNetTrainerDynTransNet_Conv2_NoMirroring"
    stats, lesions = summary["statistics"][row], {t: summary["anchors"][t]["lesions"] for t in (row, full)}
    found = _json(SCREENS + "rm_logit_split/false_positive_lesions_folds0-1.json")["trainers"]
    return ("liver Dice paired {:+.2f} points (p = {:.4f}), tumor {:+.2f} (p = {:.2f}), {} predicted lesions for "
            "{} against {}, and {} false-positive components against {}").format(
        _paired(summary, row, full, "liver")[0], stats["liver"]["dice"]["p_ttest"], _paired(summary, row, full, "tumor")[0],
        stats["tumor"]["dice"]["p_ttest"], lesions[row]["pred"], lesions[row]["ref"], lesions[full]["pred"],
        found[row]["false_positive_components"], found[full]["false_positive_components"])


def _recipe_adam() -> str:
    summary = _json(SCREENS + "recipe_adam/summary.json")
    row, full = "nnUNetTrainerDynTransNet_Adam1e4_NoMirroring", "nnUNetTrainerDynTransNet_Conv2_NoMirroring"
    stats, lesions = summary["statistics"][row], {t: summary["anchors"][t]["lesions"] for t in (row, full)}
    return "liver Dice paired {:+.2f} points (p {}), tumor {:+.2f} (p = {:.3f}), {} predicted lesions for {} against {}".format(
        _paired(summary, row, full, "liver")[0],
        "< 0.0001" if stats["liver"]["dice"]["p_ttest"] < 1e-4 else f"= {stats['liver']['dice']['p_ttest']:.4f}",
        _paired(summary, row, full, "tumor")[0], stats["tumor"]["dice"]["p_ttest"], lesions[row]["pred"],
        lesions[row]["ref"], lesions[full]["pred"])


def _spread_values(file: str, trainer: str, key: str) -> list:
    """One measurement of ``attention_spread.py``'s output, for every fold and attention module of ``trainer``."""
    folds = _json(SCREENS + "attention_spread/" + file)["models"][f"{trainer}__nnUNetPlans__3d_fullres_narrow"]
    return [module[key] for fold in folds.values() for module in fold.values()]


def _spread_range(file: str, trainer: str, key: str) -> str:
    values = _spread_values(file, trainer, key)
    return f"{min(values):.4f} to {max(values):.4f}"


def _attention_spread() -> tuple:
    def trained_and_redrawn(trainer: str) -> tuple:
        return tuple(_spread_range("sgd_and_adamw_folds0-1.json", trainer, key)
                     for key in ("score_std_over_keys", "fresh_score_std_over_keys"))

    full, sgd, adamw = ("nnUNetTrainerDynTransNet_Conv2_NoMirroring", "nnUNetTrainerDynTransNet_SGD_NoMirroring",
                        "nnUNetTrainerDynTransNet_NoMirroring")
    return ("the dot products spread {} trained against {} redrawn, and the query/key/value weights are as wide as "
            "ViT's init made them (std {} against 0.02)").format(
        *trained_and_redrawn(full), _spread_range("sgd_and_adamw_folds0-1.json", full, "qkv_weight_std")), \
        "under SGD {} trained against {} redrawn, under AdamW {} against {}".format(
            *trained_and_redrawn(sgd), *trained_and_redrawn(adamw))


def _init_fan_in() -> tuple:
    row = "nnUNetTrainerDynTransNet_FanIn_NoMirroring"
    figures = _against("init_fan_in", row, FULL, "false_positive_lesions_folds0-4.json")
    unet = _json(SCREENS + "rm_logit_split/false_positive_lesions_folds0-4.json")["trainers"][
        "nnUNetTrainer_WallClock_NoMirroring"]["false_positive_components"]
    dice = ("liver Dice paired {liver:+.2f} points (p = {p_liver:.2f}), tumor {tumor:+.2f} (p = {p_tumor:.2f}), {pred} "
            "predicted lesions for {ref} against {pred_base}, and {fp} false-positive components against {fp_base} (the "
            "U-Net's: {0}").format(unet, **figures)
    return dice, "the logits spread {} against {} redrawn".format(
        *(_spread_range("fan_in_folds0-1.json", row, key) for key in ("score_std_over_keys", "fresh_score_std_over_keys")))


def _spread_ratio(file: str, trainer: str) -> str:
    """How many times its redrawn init's a row's trained attention logits spread (min to max)."""
    trained, fresh = (_spread_values(file, trainer, key) for key in ("score_std_over_keys", "fresh_score_std_over_keys"))
    ratios = [a / b for a, b in zip(trained, fresh)]
    return f"{min(ratios):.1f} to {max(ratios):.1f}"


PER_PART, DMSA_PER_PART = "nnUNetTrainerDynTransNet_PerPart_NoMirroring", "nnUNetTrainerDynTransNet_PerPart_MSA_NoMirroring"
FULL = "nnUNetTrainerDynTransNet_Conv2_NoMirroring"
OVERLAP = "nnUNetTrainerDynTransNet_Overlap_NoMirroring"
DEC1 = "nnUNetTrainerDynTransNet_Dec1_NoMirroring"
HEADS = "nnUNetTrainerDynTransNet_Heads16_NoMirroring"
WARMUP = "nnUNetTrainerDynTransNet_Warmup_NoMirroring"
NUMBER_WORDS = {4: "four", 5: "five"}


def _per_part() -> dict:
    """The optimizer screen's figures: its paired Dice and p against the default, its lesions and false-positive
    components (:func:`_against`), its quietest fold's seconds, its attention's spread, and on how many folds of how
    many its tumor Dice is lower (in words)."""
    figures = _against("optimizer_per_part", PER_PART, FULL, "false_positive_lesions_folds0-4.json")
    summary = _json(SCREENS + "optimizer_per_part/summary.json")
    seconds = _json(SCREENS + "equal_time_per_part/seconds.json")
    tumor_folds = [TABLE._fold_means(summary, t, "tumor") for t in (PER_PART, FULL)]
    lower = sum(tumor_folds[0][f] < tumor_folds[1][f] for f in tumor_folds[1])
    spread = (_spread_range("per_part_folds0-1.json", PER_PART, key)
              for key in ("score_std_over_keys", "fresh_score_std_over_keys"))
    return dict(figures, quiet=min(seconds[PER_PART].values()), quiet_full=min(seconds[FULL].values()),
                lower=NUMBER_WORDS[lower], folds=NUMBER_WORDS[len(tumor_folds[1])], spread=" against ".join(spread),
                ratio=_spread_ratio("per_part_folds0-1.json", PER_PART))


def _dmsa_per_part() -> str:
    """The screens README's sentence of the D-MSA ablation with the optimizer per part: plain MSA against D-MSA."""
    figures = _against("ablation_dmsa_per_part", DMSA_PER_PART, PER_PART, "false_positive_lesions_folds0-1.json")
    summary = _json(SCREENS + "ablation_dmsa_per_part/summary.json")
    fold_1 = [TABLE._fold_means(summary, t, "tumor")["fold_1"] for t in (DMSA_PER_PART, PER_PART)]
    return ("liver Dice paired {liver:+.2f} points (p = {p_liver:.3f}, {n_liver} cases), tumor {tumor:+.2f} (p = "
            "{p_tumor:.2f}, {n_tumor} cases), {pred} predicted lesions for {ref} against {pred_base}, and {fp} "
            "false-positive components against {fp_base} ([rm_logit_split/false_positive_lesions_folds0-1.json]"
            "(rm_logit_split/false_positive_lesions_folds0-1.json)). The per-fold tumor means differ more ({0:.1f} "
            "against {1:.1f} on fold 1)").format(*fold_1, **figures)


def _deep_supervision() -> str:
    """The screens README's sentence of the deep-supervision screen: no deep supervision against the default."""
    return ("liver Dice paired {liver:+.2f} points (p = {p_liver:.3f}, {n_liver} cases), tumor {tumor:+.2f} (p = "
            "{p_tumor:.2f}), {pred} predicted lesions for {ref} against {pred_base}, as many false-positive components "
            "({fp} and {fp_base}").format(**_against("deep_supervision", "nnUNetTrainerDynTransNet_NoDS_NoMirroring",
                                                     FULL, "false_positive_lesions_fold0.json"))


def _seconds_ratio(screen: str, row: str, baseline: str = FULL) -> float:
    """A screen row's seconds over its folds against the baseline's over the same folds (``seconds.json``)."""
    seconds = _json(SCREENS + screen + "/seconds.json")
    return sum(seconds[row].values()) / sum(seconds[baseline][fold] for fold in seconds[row])


def _patch_embedding() -> str:
    """The screens README's sentence of the patch-embedding screen: overlapping against non-overlapping patches."""
    row = OVERLAP
    return ("liver Dice paired {liver:+.2f} points (p = {p_liver:.2f}, {n_liver} cases), tumor {tumor:+.2f} (p = "
            "{p_tumor:.2f}), {pred} predicted lesions for {ref} against {pred_base}, and {fp} false-positive components "
            "against {fp_base} ([rm_logit_split/false_positive_lesions_folds0-2.json](rm_logit_split/false_positive_"
            "lesions_folds0-2.json)). But on this CPU its folds took {ratio:.2f}x the default's time").format(
        ratio=_seconds_ratio("patch_embedding", row),
        **_against("patch_embedding", row, FULL, "false_positive_lesions_folds0-2.json"))


def _decoder_units() -> str:
    """The screens README's sentence of the decoder-units screen: one conv unit in RM against two."""
    return ("Against the default: liver Dice paired {liver:+.2f} points (p = {p_liver:.2f}, {n_liver} cases), tumor "
            "{tumor:+.2f} (p = {p_tumor:.2f}), {pred} predicted lesions for {ref} against {pred_base}, and {fp} "
            "false-positive components against {fp_base} ([rm_logit_split/false_positive_lesions_folds0-1.json]"
            "(rm_logit_split/false_positive_lesions_folds0-1.json)), in {ratio:.2f}x the default's time per fold").format(
        ratio=_seconds_ratio("decoder_units", DEC1), **_against("decoder_units", DEC1, FULL,
                                                                 "false_positive_lesions_folds0-1.json"))


def _variant_at_equal_time(screen: str, row: str, source: str) -> dict:
    """A variant at equal time over five folds (``report_equal_time.sh``): its figures against the default
    (``vs_default``, with the false-positive components), against the U-Net (``u_`` + the same keys), the epochs that
    equal time gave it (31 over the ``source`` screen's time ratio, which must be the epochs it trained) and its
    folds' seconds (``fastest``, ``slowest``; the source screen's as ``screen``)."""
    ratio = _seconds_ratio(source, row)
    trained = set(_json(SCREENS + screen + "/epochs.json")[row].values())
    assert trained == {round(31 / ratio)}, f"equal time at {source}'s time ratio {ratio:.3f} is {31 / ratio:.1f} epochs"
    seconds = _json(SCREENS + screen + "/seconds.json")[row].values()
    against_unet = _against(screen, row, "nnUNetTrainer_WallClock_NoMirroring")
    return dict(_against(screen + "/vs_default", row, FULL, "false_positive_lesions_folds0-4.json"),
                **{"u_" + k: v for k, v in against_unet.items()}, ratio=ratio, epochs=round(31 / ratio),
                fastest=min(seconds), slowest=max(seconds),
                screen=" and ".join(f"{v:.1f}" for v in _json(SCREENS + source + "/seconds.json")[row].values()))


def _dec1_equal_time() -> dict:
    """One RM unit at equal time over five folds (:func:`_variant_at_equal_time`, at the decoder-units screen's
    ratio)."""
    return _variant_at_equal_time("equal_time_dec1", DEC1, "decoder_units")


def _overlap_equal_time() -> dict:
    """Overlapping patch embeddings at equal time over five folds (:func:`_variant_at_equal_time`, at the
    patch-embedding screen's ratio)."""
    return _variant_at_equal_time("equal_time_overlap", OVERLAP, "patch_embedding")


def _overlap_against_both() -> str:
    """The screens README's sentence of overlapping patch embeddings at equal time, against the default and the U-Net
    (whose liver p it gives as a bound)."""
    figures = _overlap_equal_time()
    assert figures["u_p_liver"] < 0.001, "the README's 'p < 0.001' against the U-Net no longer holds"
    return ("Against the default: liver Dice paired {liver:+.2f} points (p = {p_liver:.3f}, {n_liver} cases), tumor "
            "{tumor:+.2f} (p = {p_tumor:.2f}), {pred} predicted lesions for {ref} against {pred_base}, and {fp} "
            "false-positive components against {fp_base} (`rm_logit_split/false_positive_lesions_folds0-4.json`); "
            "against the U-Net: liver {u_liver:+.2f} (p < 0.001), tumor {u_tumor:+.2f} (p = {u_p_tumor:.2f})"
            ).format(**figures)


def _overlap_four_folds() -> dict:
    """Overlapping patch embeddings against the default at the same steps, pooled over the patch-embedding screen's
    folds 0-2 and fold 3 (``table.py pooled``): per class ``points``, ``n``, ``p``; the lesions ``pred``, ``ref`` and
    the default's ``pred_base``."""
    found = TABLE.pooled(["patch_embedding", "patch_embedding_fold3"], OVERLAP, FULL)
    (matched, ref, pred), base = (found["lesions"][OVERLAP].split("/"), found["lesions"][FULL].split("/"))
    assert ref == base[1], "the same reference lesions for both"
    return dict(found, pred=int(pred), ref=int(ref), pred_base=int(base[2]))


def _overlap_flops_ratio(plan: str = "narrow") -> float:
    """The overlapping patch embeddings' training-step FLOPs over the default's (``dyntransnet_benchmark --traffic``)."""
    rows = {r["network"]: r for r in _json(f"measurements/results/cpu_2026-12-07/traffic_overlap_{plan}.json")["results"]}
    return rows["DynTransNet[patch_embedding=overlapping]"]["traffic"]["flops"] / rows["DynTransNet"]["traffic"]["flops"]


def _overlap_flops() -> str:
    """docs/speed_and_memory.md's sentence of the overlapping patch embeddings' FLOPs against the U-Net's, the default
    and the option at each of three plans (``dyntransnet_benchmark --traffic``), and the same memory-bound traffic."""
    ratios = []
    for name in ("narrow", "32x64x64", "128"):
        rows = {r["network"]: r for r in _json(f"measurements/results/cpu_2026-12-07/traffic_overlap_{name}.json")["results"]}
        default, overlap = rows["DynTransNet"], rows["DynTransNet[patch_embedding=overlapping]"]
        assert default["traffic"]["other_bytes"] == overlap["traffic"]["other_bytes"], name  # "the same traffic"
        ratios += [default["flops_ratio"], overlap["flops_ratio"]]
    return ("a training step's FLOPs go from {:.2f} to {:.2f} of the U-Net's at the narrow widths "
            "(`traffic_overlap_narrow.json`), from {:.2f} to {:.2f} at the plan's widths (`traffic_overlap_32x64x64.json`) "
            "and from {:.2f} to {:.2f} at nnU-Net's LiTS plan").format(*ratios)


def _window() -> str:
    """The screens README's sentence of the window screen: local attention in stage 2 against global everywhere."""
    row = "nnUNetTrainerDynTransNet_Window_NoMirroring"
    return ("Against the default: liver Dice paired {liver:+.2f} points (p = {p_liver:.2f}, {n_liver} cases), tumor "
            "{tumor:+.2f} (p = {p_tumor:.2f}), {pred} predicted lesions for {ref} against {pred_base}, and {fp} "
            "false-positive components against {fp_base}, in about the same time (its quiet fold 2 took {quiet:.1f} "
            "s)").format(quiet=_json(SCREENS + "window/seconds.json")[row]["fold_2"],
                         **_against("window", row, FULL, "false_positive_lesions_folds0-2.json"))


def _adamw_spread_ratio() -> str:
    """How many times its redrawn init's the AdamW row's trained attention logits spread (min to max)."""
    return f"AdamW's spread {_spread_ratio('sgd_and_adamw_folds0-1.json', 'nnUNetTrainerDynTransNet_NoMirroring')} " \
           f"times their init's"


def _epoch_seconds() -> str:
    """The equal-time screen's epoch times: a fold's seconds (with its validation) over its epochs, the U-Net's quiet
    fold 4 against DynTransNet's fold 0 (``seconds.json``, ``epochs.json``)."""
    seconds, epochs = _json(SCREENS + "equal_time/seconds.json"), _json(SCREENS + "equal_time/epochs.json")
    unet, mine = "nnUNetTrainer_WallClock_NoMirroring", "nnUNetTrainerDynTransNet_NoMirroring"
    u = seconds[unet]["fold_4"] / epochs[unet]["fold_4"]
    d = seconds[mine]["fold_0"] / epochs[mine]["fold_0"]
    return (f"a 50-step epoch took the U-Net {u:.1f} s (its fold 4) and DynTransNet {d:.1f} s over its first fold "
            f"({d / u:.2f}x, both with their fold's validation")


def _old_comparison_gap() -> str:
    """The first comparison's liver gap: DynTransNet below the U-Net by so many points on each fold, and pooled."""
    summary = _json(OLD_COMPARISON[0])
    unet, mine = "nnUNetTrainer_WallClock_NoMirroring", "nnUNetTrainerDynTransNet_NoMirroring"
    gaps = [u - d for u, d in zip(TABLE._fold_means(summary, unet, "liver").values(),
                                  TABLE._fold_means(summary, mine, "liver").values())]
    pooled = 100 * (summary["statistics"][unet]["liver"]["dice"]["mean"] - summary["statistics"][mine]["liver"]["dice"]["mean"])
    return f"liver Dice is {min(gaps):.1f} to {max(gaps):.1f} points below the U-Net's on every fold ({pooled:.1f} pooled"


def _tumor_share(profile: str) -> float:
    """docs/demo_and_phantom.md's table: the tumor share of the whole liver, in percent, mean over the 40 cases the
    phantom makes with seed 0 for ``profile``."""
    from nnunet_dyntransnet.dataset_conversion.phantom import PhantomSpec, make_case

    shares = []
    for index in range(40):
        _, label = make_case(PhantomSpec(tumors=profile), 0, index)
        shares.append((label == 2).sum() / (label > 0).sum())
    return 100 * sum(shares) / len(shares)


def _fold_paired(screen: str, fold: str) -> tuple:
    """One fold of a two-row screen: the row's paired liver Dice difference against the baseline, in points, and
    the paired t-test's p over that fold's cases."""
    from scipy.stats import ttest_rel

    summary = _json(SCREENS + screen + "/summary.json")
    base = summary["baseline"]
    row = next(t for t in summary["per_case"] if t != base)
    cases = [c for c, f in summary["folds"][row].items() if f == fold]
    mine = [summary["per_case"][row][c]["liver"]["dice"] for c in cases]
    theirs = [summary["per_case"][base][c]["liver"]["dice"] for c in cases]
    return 100 * sum(a - b for a, b in zip(mine, theirs)) / len(cases), ttest_rel(mine, theirs).pvalue


def _now(where: tuple, key: str) -> float:
    """One figure of today's default: ``where`` is (file, row)."""
    return _row(_json(where[0]), where[1])[key]
DEFAULTS = "measurements/results/cpu_2026-11-30/defaults_32x64x64_rounds5.json"
GPU_PROFILE = "measurements/results/h200_2026-11-27/gpu_profile.json"
DEMO = "docs/demo/results.json"

# (document, the text it must hold, rendered from the committed file it cites)
FIGURES = [
    ("README.md", lambda: "trains a step in **{:.2f}x** the U-Net's time, predicts in {:.2f}x, peaks at {:.2f}x its "
                          "training memory, and keeps {:.2f}x its activations for backward at nnU-Net's LiTS plan "
                          "(128^3), where the bytes its memory-bound operations move are {:.2f}x the U-Net's (medians "
                          "of 5 alternating rounds, `{}`, its row `{}`".format(
        *(_now(DEFAULT_NOW, k) for k in ("train_step_ratio", "infer_ratio", "peak_memory_ratio")),
        *(_now(COUNT_NOW, k) for k in ("feature_map_ratio", "other_bytes_ratio")), *DEFAULT_NOW)),
    ("docs/speed_and_memory.md", lambda: "| **default** (`conv_stages=2`) | {:.2f} | **{:.2f}** (rounds {}) | **{:.2f}** ({}) | "
                                         "**{:.2f}** | {:.2f} | **{:.2f}** | {:.2f} |".format(
        _now(DEFAULT_NOW, "parameters") / 1e6, _now(DEFAULT_NOW, "train_step_ratio"),
        ", ".join(f"{v:.2f}" for v in _now(DEFAULT_NOW, "train_step_ratio_rounds")), _now(DEFAULT_NOW, "infer_ratio"),
        ", ".join(f"{v:.2f}" for v in _now(DEFAULT_NOW, "infer_ratio_rounds")),
        *(_now(DEFAULT_NOW, k) for k in ("peak_memory_ratio", "default_malloc_peak_memory_ratio")),
        *(_now(COUNT_NOW, k) for k in ("feature_map_ratio", "other_bytes_ratio")))),
    ("docs/speed_and_memory.md", lambda: "**training step <= 1.00x: met** ({:.2f}x), **inference <= 1.00x: met** ({:.2f}x), "
                                         "**peak memory <= 1.00x: met** ({:.2f}x), **count at 128^3 <= 1.00x: met** "
                                         "({:.2f}x)".format(*(_now(DEFAULT_NOW, k) for k in (
                                             "train_step_ratio", "infer_ratio", "peak_memory_ratio")),
                                                            _now(COUNT_NOW, "feature_map_ratio"))),
    ("docs/speed_and_memory.md", lambda: "so the traffic falls from {:.2f}x to {:.2f}x".format(
        *(_row(_json(COUNT_NOW[0]), n)["other_bytes_ratio"] for n in ("DynTransNet[conv_stages=1]", "DynTransNet")))),
    ("docs/comparison/screens/README.md", lambda: "{:.2f}x the U-Net's count at 128^3".format(
        _now(COUNT_NOW, "feature_map_ratio"))),
    ("docs/speed_and_memory.md", lambda: "Since the default keeps {:.2f}x the U-Net's activations at 128^3 (`{}`)".format(
        _now(COUNT_NOW, "feature_map_ratio"), COUNT_NOW[0].rsplit("/", 1)[1])),
    ("README.md", lambda: "glibc's default heap peak, {:.2f}x".format(_now(DEFAULT_NOW, "default_malloc_peak_memory_ratio"))),
    ("README.md", lambda: "it costs a little more: step {:.2f}x, inference {:.2f}x, memory {:.2f}x (5 rounds, `{}`".format(
        *(_now(NARROW_NOW, k) for k in ("train_step_ratio", "infer_ratio", "peak_memory_ratio")), NARROW_NOW[0])),
    ("docs/network.md", lambda: "made the whole training step {:.1f}x slower: `{}`".format(
        _json(GPU_PROFILE)["eager_step_s"] / _json(GPU_PROFILE)["step_without_pos_conv_s"], GPU_PROFILE)),
    ("docs/speed_and_memory.md", lambda: "({:.2f}x the U-Net's count in nnU-Net's units".format(
        _row(_json(CPU + "traffic_and_count_128_pointwise.json"), "DynTransNet")["feature_map_ratio"])),
    ("docs/speed_and_memory.md", lambda: "the 0.1 network's was {:.2f}x".format(_row(
        _json(CPU + "traffic_and_count_128_defaults.json"),
        "DynTransNet[transformer_depth=None,mlp_ratio=4,window_size=8,selective_checkpointing=False]")["feature_map_ratio"])),
    ("docs/speed_and_memory.md", lambda: "| DynTransNet (default) | {:.2f} ({}) | {:.2f} | {:.2f} | {:.2f} |".format(
        _row(_json(NARROW), "DynTransNet")["train_step_ratio"],
        "rounds " + ", ".join(f"{v:.2f}" for v in _row(_json(NARROW), "DynTransNet")["train_step_ratio_rounds"]),
        *(_row(_json(NARROW), "DynTransNet")[k] for k in ("infer_ratio", "peak_memory_ratio",
                                                          "default_malloc_peak_memory_ratio")))),
    ("docs/speed_and_memory.md", lambda: "| before this round of changes | {:.2f} ({}) | {:.2f} | {:.2f} | {:.2f} |".format(
        _row(_json(CPU + "narrow_defaults_rounds3.json"), "DynTransNet")["train_step_ratio"],
        ", ".join(f"{v:.2f}" for v in _row(_json(CPU + "narrow_defaults_rounds3.json"), "DynTransNet")["train_step_ratio_rounds"]),
        *(_row(_json(CPU + "narrow_defaults_rounds3.json"), "DynTransNet")[k]
          for k in ("infer_ratio", "peak_memory_ratio", "default_malloc_peak_memory_ratio")))),
    ("docs/speed_and_memory.md", lambda: "| before the two changes before it | {:.2f} | - | {:.2f} | - |".format(
        *(_row(_json(CPU + "narrow_selective_rounds3.json"), "DynTransNet")[k]
          for k in ("train_step_ratio", "peak_memory_ratio")))),
    ("docs/speed_and_memory.md", lambda: "| the 2026-11-30 default | {:.2f} | **{:.2f}** (rounds {}) | **{:.2f}** ({}) | **{:.2f}** | "
                                         "{:.2f} | **{:.2f}** | {:.2f} |".format(
        _row(_json(DEFAULTS), "DynTransNet")["parameters"] / 1e6,
        _row(_json(DEFAULTS), "DynTransNet")["train_step_ratio"],
        ", ".join(f"{v:.2f}" for v in _row(_json(DEFAULTS), "DynTransNet")["train_step_ratio_rounds"]),
        _row(_json(DEFAULTS), "DynTransNet")["infer_ratio"],
        ", ".join(f"{v:.2f}" for v in _row(_json(DEFAULTS), "DynTransNet")["infer_ratio_rounds"]),
        *(_row(_json(DEFAULTS), "DynTransNet")[k] for k in ("peak_memory_ratio", "default_malloc_peak_memory_ratio")),
        *(_count("traffic_and_count_128_pointwise.json", "DynTransNet", k) for k in ("feature_map_ratio",
                                                                                   "other_bytes_ratio")))),
    *((doc, lambda: "**level with the U-Net in liver Dice** ({}) and **below it in tumor Dice** ({}".format(
        *(_equal_time(c, "nnUNetTrainerDynTransNet_Conv2_NoMirroring", EQUAL_TIME_CONV2) for c in ("liver", "tumor"))))
      for doc in ("README.md", "docs/comparison/findings.md")),
    ("README.md", lambda: _short_of_the_unet()),
    ("docs/comparison/findings.md", lambda: "on this CPU ({:.1f} s against {:.1f} s, each on a quiet machine".format(
        sum(_json(SCREENS + "equal_time_conv2/timing_run.json")["epoch_seconds"]) / 5,
        _json(SCREENS + "lits_unet32/seconds.json")["nnUNetTrainer_WallClock_NoMirroring"]["fold_4"] / 32)),
    ("docs/comparison/findings.md", lambda: "raised tumor Dice from {1:.2f} to {0:.2f} (p = {2:.2f}), liver level ({5:.2f} and {4:.2f})".format(
        *_conv2_figures())),
    *(("docs/speed_and_memory.md", (lambda n=network, f=name, w=widths, label=label:
        "| {} | {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} |".format(label, w, *(
            _row(_json("measurements/results/cpu_2026-12-06/" + f), n)[k] for k in (
                "train_step_ratio", "infer_ratio", "peak_memory_ratio", "default_malloc_peak_memory_ratio")))))
      for name, widths in (("conv_stages_32x64x64_rounds5.json", "32 to 320"), ("conv_stages_narrow_rounds5.json", "8 to 64"))
      for network, label in (("DynTransNet", "DynTransNet, `conv_stages=1` (the default then)"),
                             ("DynTransNet[conv_stages=2]", "DynTransNet, `conv_stages=2` (the default since)"))),
    ("docs/comparison/screens/README.md", lambda: _lesions_at_equal_time()),
    ("docs/comparison/findings.md", lambda: "the two have the same tumor Dice ({:.2f} and {:.2f}), but DynTransNet predicts {} lesions to the "
                          "U-Net's {} for {} real ones".format(
        *(100 * a["global_dice"]["tumor"] for a in _equal_time_anchors()),
        *(a["lesions"]["pred"] for a in _equal_time_anchors()), _equal_time_anchors()[1]["lesions"]["ref"])),
    ("docs/comparison/screens/README.md", lambda: _ablation_fmm()),
    ("docs/comparison/findings.md", lambda: _equal_time_paired()),
    ("docs/comparison/findings.md", lambda: "without RM's residual alone {} (the full model {})".format(
        *(_json(SCREENS + "ablation_rm/summary.json")["anchors"][t]["lesions"]["pred"]
          for t in ("nnUNetTrainerDynTransNet_DMSA_FMM_NoMirroring", "nnUNetTrainerDynTransNet_Conv2_NoMirroring")))),
    ("docs/comparison/findings.md", lambda: "without FM-M alone the full model still predicted {} for {}".format(
        *(_json(SCREENS + "ablation_fmm/summary.json")["anchors"]["nnUNetTrainerDynTransNet_DMSA_RM_NoMirroring"]
          ["lesions"][k] for k in ("pred", "ref")))),
    ("docs/comparison/screens/README.md", lambda: _ablation_rm()),
    ("docs/comparison/screens/README.md", lambda: _rm_logit_split()),
    ("docs/comparison/screens/README.md", lambda: _false_positive_components()),
    ("docs/comparison/screens/README.md", lambda: _rm_post()),
    ("docs/comparison/screens/README.md", lambda: _rm_decoder()),
    ("docs/comparison/screens/README.md", lambda: _ablation_dmsa()),
    ("docs/comparison/screens/README.md", lambda: _recipe_adam()),
    ("docs/comparison/screens/README.md", lambda: _attention_spread()[0]),
    ("docs/comparison/screens/README.md", lambda: _attention_spread()[1]),
    ("docs/comparison/screens/README.md", lambda: _init_fan_in()[0]),
    ("docs/comparison/findings.md", lambda: _adamw_spread_ratio()),
    ("docs/network.md", lambda: _adamw_spread_ratio()),
    ("docs/comparison/findings.md", lambda: "tumor Dice paired {:+.2f}, p = {:.2f}".format(
        _paired(_json(SCREENS + "init_fan_in/summary.json"), "nnUNetTrainerDynTransNet_FanIn_NoMirroring",
                "nnUNetTrainerDynTransNet_Conv2_NoMirroring", "tumor")[0],
        _json(SCREENS + "init_fan_in/summary.json")["statistics"]["nnUNetTrainerDynTransNet_FanIn_NoMirroring"]["tumor"]
        ["dice"]["p_ttest"])),
    *((doc, lambda: "lost {:.2f} points of liver Dice".format(-_paired(
        _json(SCREENS + "recipe_adam/summary.json"), "nnUNetTrainerDynTransNet_Adam1e4_NoMirroring",
        "nnUNetTrainerDynTransNet_Conv2_NoMirroring", "liver")[0])) for doc in ("docs/comparison/findings.md", "docs/network.md")),
    ("docs/comparison/screens/README.md", lambda: _init_fan_in()[1]),
    ("docs/comparison/screens/README.md", lambda: "its quietest fold took {quiet:.1f} s against the default's "
                                                  "{quiet_full:.1f} s".format(**_per_part())),
    ("docs/comparison/screens/README.md", lambda: "the logits spread {spread} with the linears redrawn, {ratio} "
                                                  "times".format(**_per_part())),
    ("docs/comparison/screens/README.md", lambda: (
        "liver Dice paired {liver:+.2f} points (p = {p_liver:.2f}), tumor {tumor:+.2f} (p = {p_tumor:.3f}), lower on "
        "{lower} folds of {folds}; {pred} predicted lesions for {ref} against {pred_base}, and {fp} false-positive "
        "components against {fp_base}").format(**_per_part())),
    ("docs/comparison/screens/README.md", lambda: _dmsa_per_part()),
    ("docs/comparison/screens/README.md", lambda: _deep_supervision()),
    ("docs/comparison/screens/README.md", lambda: _patch_embedding()),
    ("docs/comparison/screens/README.md", lambda: _window()),
    ("docs/comparison/screens/README.md", lambda: _decoder_units()),
    ("docs/comparison/screens/README.md", lambda: (
        "`_Dec1` for {epochs} epochs per fold (31 / {ratio:.2f}, the decoder-units screen's time per fold against the "
        "default's)").format(**_dec1_equal_time())),
    ("docs/comparison/screens/README.md", lambda: (
        "Against the default: liver Dice paired {liver:+.2f} points (p = {p_liver:.2f}, {n_liver} cases), tumor "
        "{tumor:+.2f} (p = {p_tumor:.2f}, {n_tumor} cases), {pred} predicted lesions for {ref} against {pred_base}, and "
        "{fp} false-positive components against {fp_base} (`rm_logit_split/false_positive_lesions_folds0-4.json`); "
        "against the U-Net: liver {u_liver:+.2f} (p = {u_p_liver:.2f}), tumor {u_tumor:+.2f} (p = {u_p_tumor:.2f})"
    ).format(**_dec1_equal_time())),
    ("docs/comparison/screens/README.md", lambda: (
        "its {epochs}-epoch folds took {fastest:.1f} to {slowest:.1f} s, where the decoder-units screen's 31 epochs "
        "took {screen} s").format(**_dec1_equal_time())),
    ("docs/comparison/findings.md", lambda: (
        "at equal time over five folds ({epochs} epochs to the default's 31) it did not pay: liver Dice paired "
        "{liver:+.2f} against the default (p = {p_liver:.2f}) and {u_liver:+.2f} against the U-Net, tumor {tumor:+.2f} "
        "(p = {p_tumor:.2f}) and {u_tumor:+.2f}, with more false-positive components ({fp} against {fp_base})"
    ).format(**_dec1_equal_time())),
    ("docs/network.md", lambda: (
        "at equal time over five folds it did not pay (tumor Dice paired {tumor:+.2f} against the default, p = "
        "{p_tumor:.2f}, and more false-positive components").format(**_dec1_equal_time())),
    ("docs/network.md", lambda: "fewer false-positive lesions in {:.2f}x the time (`decoder_units`)".format(
        _seconds_ratio("decoder_units", DEC1))),
    ("docs/comparison/findings.md", lambda: "with fewer false-positive lesions ({fp} components against {fp_base}), in {ratio:.2f}x the "
                          "time".format(ratio=_seconds_ratio("decoder_units", DEC1), **_against(
                              "decoder_units", DEC1, FULL, "false_positive_lesions_folds0-1.json"))),
    ("docs/comparison/findings.md", lambda: "with fewer false-positive lesions ({fp} components against {fp_base}), but took {ratio:.2f}x the "
                          "time on this CPU".format(ratio=_seconds_ratio("patch_embedding", OVERLAP), **_against(
                              "patch_embedding", OVERLAP, FULL, "false_positive_lesions_folds0-2.json"))),
    ("docs/network.md", lambda: "but {:.2f}x the default's time per fold on the CPU".format(
        _seconds_ratio("patch_embedding", OVERLAP))),
    ("docs/speed_and_memory.md", lambda: "its screen's folds took {:.2f}x the default's time".format(
        _seconds_ratio("patch_embedding", OVERLAP))),
    ("docs/speed_and_memory.md", lambda: _overlap_flops()),
    ("docs/comparison/screens/README.md", lambda: (
        "`_Overlap` for {epochs} epochs per fold (31 / {ratio:.2f}, the patch-embedding screen's time per fold against "
        "the default's)").format(**_overlap_equal_time())),
    ("docs/comparison/screens/README.md", lambda: _overlap_against_both()),
    ("docs/comparison/screens/README.md", lambda: "its {epochs}-epoch folds took {fastest:.1f} to {slowest:.1f} s".format(
        **_overlap_equal_time())),
    ("docs/comparison/screens/README.md", lambda: "Its FLOPs are {:.2f}x the default's".format(_overlap_flops_ratio())),
    ("docs/comparison/screens/README.md", lambda: (
        "Fold 3 alone: liver Dice paired {liver:+.2f} points (p = {p_liver:.2f}, {n_liver} cases), tumor {tumor:+.2f} "
        "(p = {p_tumor:.2f}, {n_tumor} cases), {pred} predicted lesions for {ref} against {pred_base}").format(
        **_against("patch_embedding_fold3", OVERLAP, FULL))),
    ("docs/comparison/findings.md", lambda: (
        "did not pay over five folds: liver Dice paired {liver:+.2f} against the default (p = {p_liver:.2f}), tumor "
        "{tumor:+.2f} (p = {p_tumor:.2f}), {pred} predicted lesions against {pred_base} (the U-Net's {unet}) and fewer "
        "found ({matched} matched against {matched_base})").format(**_warmup_equal_time())),
    ("docs/comparison/screens/README.md", lambda: (
        "Tumor Dice per fold {t0} / {t1} / {t2} / {t3} / {t4} against the default's {dt0} / {dt1} / {dt2} / {dt3} / "
        "{dt4}, liver {l0} / {l1} / {l2} / {l3} / {l4} against {dl0} / {dl1} / {dl2} / {dl3} / {dl4}").format(
        **_lr_equal_time())),
    ("docs/comparison/screens/README.md", lambda: (
        "Against the default: liver Dice paired {liver:+.2f} points (p = {p_liver:.3f}, {n_liver} cases), tumor "
        "{tumor:+.2f} (p = {p_tumor:.3f}, {n_tumor} cases), {pred} predicted lesions for {ref} against {pred_base}, "
        "{matched} of them matched against {matched_base}, and {fp} false-positive components against {fp_base} "
        "(`rm_logit_split/false_positive_lesions_folds0-4.json`); against the U-Net: liver {u_liver:+.2f} "
        "(p = {u_p_liver:.2f}), tumor {u_tumor:+.2f} (p = {u_p_tumor:.2f}), {pred} predicted lesions against its "
        "{unet}").format(**_lr_equal_time())),
    *((doc, lambda: (
        "liver Dice paired {liver:+.2f} against the default (p = {p_liver:.3f}) and {u_liver:+.2f} against the U-Net, "
        "tumor {tumor:+.2f} (p = {p_tumor:.3f}) and {u_tumor:+.2f}").format(**_lr_equal_time()))
      for doc in ("docs/comparison/findings.md", "docs/network.md")),
    ("docs/comparison/findings.md", lambda: "with fewer predicted lesions ({pred} against {pred_base}, the U-Net's {unet})".format(
        **_lr_equal_time())),
    ("docs/network.md", lambda: (
        "over five folds either (liver Dice paired {liver:+.2f}, tumor {tumor:+.2f} against the default").format(
        **_warmup_equal_time())),
    ("docs/training.md", lambda: (
        "did not pay at equal time over five folds: liver Dice paired {liver:+.2f} against the default "
        "(p = {p_liver:.2f}), tumor {tumor:+.2f} (p = {p_tumor:.2f})").format(**_warmup_equal_time())),
    ("docs/comparison/screens/README.md", lambda: (
        "tumor Dice {t3} and {t4} against the default's {dt3} and {dt4}, liver {l3} and {l4} against {dl3} and "
        "{dl4}").format(**_warmup_equal_time())),
    ("docs/comparison/screens/README.md", lambda: (
        "Against the default: liver Dice paired {liver:+.2f} points (p = {p_liver:.3f}, {n_liver} cases), tumor "
        "{tumor:+.2f} (p = {p_tumor:.2f}, {n_tumor} cases), {pred} predicted lesions for {ref} against {pred_base}, "
        "{matched} of them matched against {matched_base}, and {fp} false-positive components against {fp_base} "
        "(`rm_logit_split/false_positive_lesions_folds0-4.json`); against the U-Net: liver {u_liver:+.2f} "
        "(p = {u_p_liver:.3f}), tumor {u_tumor:+.2f} (p = {u_p_tumor:.2f})").format(**_warmup_equal_time())),
    ("docs/comparison/findings.md", lambda: "were mixed on the one fold run (liver {liver:+.2f}, tumor {tumor:+.2f})".format(
        **_against("heads", HEADS, FULL))),
    ("docs/comparison/screens/README.md", lambda: (
        "Folds 0 and 1 looked like a gain (tumor Dice {wt0} and {wt1} against {dt0} and {dt1}, far fewer predicted "
        "lesions), fold 2 did not ({wt2} against {dt2})").format(**_warmup_folds())),
    ("docs/comparison/screens/README.md", lambda: (
        "Over the three folds: liver Dice paired {liver:+.2f} points (p = {p_liver:.2f}, {n_liver} cases), tumor "
        "{tumor:+.2f} (p = {p_tumor:.2f}, {n_tumor} cases), {pred} predicted lesions for {ref} against {pred_base} "
        "(the U-Net's: {unet})").format(**_warmup_against_default())),
    ("docs/comparison/screens/README.md", lambda: (
        "Fold 0: liver Dice paired {liver:+.2f} points (p = {p_liver:.2f}, {n_liver} cases), tumor {tumor:+.2f} "
        "(p = {p_tumor:.2f}), {pred} predicted lesions for {ref} against {pred_base}").format(
        **_against("heads", HEADS, FULL))),
    ("docs/comparison/screens/README.md", lambda: (
        "(`table.py pooled`, {liver[n]} cases): liver {liver[points]:+.2f} (p = {liver[p]:.2f}), tumor "
        "{tumor[points]:+.2f} (p = {tumor[p]:.2f}, {tumor[n]} cases), {pred} predicted lesions for {ref} against "
        "{pred_base}").format(**_overlap_four_folds())),
    ("docs/comparison/findings.md", lambda: (
        "at the same steps, over four folds ({liver[n]} cases), liver Dice paired {liver[points]:+.2f} (p = "
        "{liver[p]:.2f}), tumor {tumor[points]:+.2f} (p = {tumor[p]:.2f}), {pred} predicted lesions for {ref} against "
        "{pred_base}").format(**_overlap_four_folds())),
    ("docs/comparison/findings.md", lambda: (
        "at equal time over five folds ({epochs} epochs to the default's 31) they did not pay: liver Dice paired "
        "{liver:+.2f} against the default (p = {p_liver:.3f}), tumor {tumor:+.2f} (p = {p_tumor:.2f}), with more "
        "false-positive components ({fp} against {fp_base}). Their FLOPs are {flops:.2f}x the default's").format(
        flops=_overlap_flops_ratio(), **_overlap_equal_time())),
    ("docs/network.md", lambda: (
        "at equal time over five folds it did not pay (liver Dice paired {liver:+.2f} against the default, p = "
        "{p_liver:.3f}, and more false-positive components: `equal_time_overlap`), so the default stays `\"linear\"`. "
        "Its FLOPs are only {flops:.2f}x the default's").format(flops=_overlap_flops_ratio(), **_overlap_equal_time())),
    ("docs/comparison/findings.md", lambda: "(plain attention's liver Dice paired {liver:+.2f}, p = {p_liver:.3f}; tumor {tumor:+.2f}, "
                          "p = {p_tumor:.2f})".format(**_against("ablation_dmsa_per_part", DMSA_PER_PART, PER_PART))),
    ("docs/comparison/findings.md", lambda: "made the attention train (its logits spread {ratio} times their init's)".format(**_per_part())),
    ("docs/comparison/findings.md", lambda: "liver Dice paired {liver:+.2f} (p = {p_liver:.2f}) and tumor Dice {tumor:+.2f} "
                          "(p = {p_tumor:.3f}) against the default".format(**_per_part())),
    ("docs/network.md", lambda: "(logits spread {ratio} times their init's)".format(**_per_part())),
    ("docs/network.md", lambda: "(paired {tumor:+.2f}, p = {p_tumor:.3f}; liver {liver:+.2f}, p = {p_liver:.2f}".format(
        **_per_part())),
    ("docs/training.md", lambda: "(paired {tumor:+.2f} points, p = {p_tumor:.3f}; liver {liver:+.2f})".format(
        **_per_part())),
    ("docs/comparison/screens/README.md", lambda: _ablation_baseline()[0]),
    ("docs/comparison/screens/README.md", lambda: _ablation_baseline()[1]),
    # docs/network.md, "Defaults, and why": each measured effect with the file it comes from
    ("docs/network.md", lambda: "tumor Dice {1:.2f} -> {0:.2f} (paired p = {2:.2f}) and liver Dice {5:.2f} -> {4:.2f}".format(
        *_conv2_figures())),
    ("docs/network.md", lambda: "train step / inference / peak memory {} -> {} (`cpu_2026-12-06/{}`); count at 128^3 "
                                "{:.2f} -> {:.2f}, traffic {:.2f} -> {:.2f} (`cpu_2026-12-06/{}`)".format(
        *(" / ".join(f"{_row(_json(DEFAULT_NOW[0]), n)[k]:.2f}" for k in ("train_step_ratio", "infer_ratio",
                                                                          "peak_memory_ratio"))
          for n in ("DynTransNet", DEFAULT_NOW[1])), DEFAULT_NOW[0].rsplit("/", 1)[1],
        *(_row(_json(COUNT_NOW[0]), n)[k] for k in ("feature_map_ratio", "other_bytes_ratio")
          for n in ("DynTransNet[conv_stages=1]", "DynTransNet")), COUNT_NOW[0].rsplit("/", 1)[1])),
    ("docs/network.md", lambda: "0.1 network {} (`variants_32x64x64_rounds3.json`); with MLP ratio 2: {} "
                                "(`mlp2_32x64x64_rounds3.json`); with one block as well: {} (`depth1_32x64x64_rounds3.json`)".format(
        _ratios("variants_32x64x64_rounds3.json", "DynTransNet"),
        _ratios("mlp2_32x64x64_rounds3.json", "DynTransNet[mlp_ratio=2]"),
        _ratios("depth1_32x64x64_rounds3.json", "DynTransNet[transformer_depth=1,mlp_ratio=2]"))),
    ("docs/network.md", lambda: "with one block and MLP 2: {} against {} at 8 (`depth1_32x64x64_rounds3.json`)".format(
        _ratios("depth1_32x64x64_rounds3.json", "DynTransNet[transformer_depth=1,mlp_ratio=2,window_size=4]"),
        _ratios("depth1_32x64x64_rounds3.json", "DynTransNet[transformer_depth=1,mlp_ratio=2]"))),
    ("docs/network.md", lambda: "predicted in {:.2f}x against the 0.1 network's {:.2f}x on CPU".format(
        _row(_json(CPU + "variants_32x64x64_rounds3.json"),
             "DynTransNet[mlp_ratio=2,head_dim=64,selective_checkpointing=True]")["infer_ratio"],
        _row(_json(CPU + "variants_32x64x64_rounds3.json"), "DynTransNet")["infer_ratio"])),
    ("docs/network.md", lambda: "count at 128^3 {}; traffic {} (`traffic_and_count_128.json`".format(
        *(_change(key, ("traffic_and_count_128.json", "DynTransNet"), ("traffic_and_count_128_defaults.json", NO_SELECTIVE))
          for key in ("feature_map_ratio", "other_bytes_ratio")))),
    ("docs/network.md", lambda: "traffic at 128^3 {} (`traffic_and_count_128_defaults.json` -> "
                                "`traffic_and_count_128_fmm_sum.json`), CPU peak memory {:.2f}".format(
        _change("other_bytes_ratio", ("traffic_and_count_128_defaults.json", "DynTransNet"),
                ("traffic_and_count_128_fmm_sum.json", "DynTransNet")),
        _count("defaults_32x64x64_rounds3.json", "DynTransNet", "peak_memory_ratio"))),
    ("docs/network.md", lambda: "count {} and traffic {} over every stage and level (`traffic_and_count_128_defaults.json`); "
                                "CPU step {}, glibc peak RSS {} (`selective_parts_32x64x64_rounds3.json`".format(
        *(_change(key, ("traffic_and_count_128_defaults.json", NO_SELECTIVE), ("traffic_and_count_128_defaults.json",
                                                                               "DynTransNet"))
          for key in ("feature_map_ratio", "other_bytes_ratio")),
        *(_change(key, ("selective_parts_32x64x64_rounds3.json", "DynTransNet"),
                  ("selective_parts_32x64x64_rounds3.json", "DynTransNet[selective_checkpointing='transformer+decoder']"))
          for key in ("train_step_ratio", "peak_memory_ratio")))),
    ("docs/network.md", lambda: "`True` adds the stem (count {:.2f}, but {:.2f}x the step)".format(
        _count("traffic_and_count_128_defaults.json", "DynTransNet[selective_checkpointing=True]", "feature_map_ratio"),
        _count("selective_parts_32x64x64_rounds3.json", "DynTransNet[selective_checkpointing=True]", "train_step_ratio"))),
    ("docs/network.md", lambda: "count at 128^3 {}, traffic {} (`traffic_and_count_128_pointwise.json`)".format(
        *(_change(key, ("traffic_and_count_128_pointwise.json", "DynTransNet[selective_depth=None]"),
                  ("traffic_and_count_128_pointwise.json", "DynTransNet")) for key in ("feature_map_ratio",
                                                                                     "other_bytes_ratio")))),
    ("docs/network.md", lambda: "{:.2f}x the time at 8 channels, {:.2f}x at 32, {:.2f}x at 64 (`pointwise.json`)".format(
        *(case["ratio"] for case in _json(CPU + "pointwise.json")["cases"][:3]))),
    ("docs/network.md", lambda: "took the training step from {:.2f}x to **{:.2f}x** the U-Net's".format(
        _count("defaults_32x64x64_rounds3.json", "DynTransNet", "train_step_ratio"),
        _count("defaults_32x64x64_rounds5.json", "DynTransNet", "train_step_ratio"))),
    ("docs/network.md", lambda: "with inference at {:.2f}x, peak memory at {:.2f}x and the count at {:.2f}x".format(
        _count("defaults_32x64x64_rounds5.json", "DynTransNet", "infer_ratio"),
        _count("defaults_32x64x64_rounds5.json", "DynTransNet", "peak_memory_ratio"),
        _count("traffic_and_count_128_pointwise.json", "DynTransNet", "feature_map_ratio"))),
    ("docs/demo_and_phantom.md", lambda: "{} epochs of 25 steps, {} steps at {:.2f} s a step".format(
        _json(DEMO)["epochs"], _json(DEMO)["steps"], _json(DEMO)["seconds_per_step"])),
    ("docs/demo_and_phantom.md", lambda: "and {:.1f} minutes in all".format(_json(DEMO)["minutes_total"])),
    ("README.md", lambda: "{:.1f} minutes in all for the committed run".format(_json(DEMO)["minutes_total"])),
    ("docs/demo_and_phantom.md", lambda: "a quiet 2-core machine trains in the budget ({:.2f} s a step".format(
        _json(DEMO)["seconds_per_step"])),
    *(("docs/demo_and_phantom.md", (lambda m=method, c=cls: "| {} | {} | {:.2f} | {:.2f} | {:.2f} |".format(
        m, c, *(100 * _json(DEMO)[m][c][k] for k in ("dice", "precision", "recall")))))
      for method in ("DynTransNet", "threshold baseline") for cls in ("whole liver", "tumor")),
    ("docs/comparison/screens/README.md", lambda: _epoch_seconds()),
    ("docs/demo/results.md", lambda: _json(DEMO)["summary"]),
    ("docs/comparison/README.md", lambda: _old_comparison_gap()),
    *(("docs/demo_and_phantom.md", (lambda p=profile: "| {:.1f}% |".format(_tumor_share(p))))
      for profile in ("standard", "lits")),
    ("docs/comparison/screens/README.md", lambda: "Fold 0 alone had said D-MSA earns liver Dice ({:+.2f} without it, "
                                                  "p = {:.3f})".format(*_fold_paired("ablation_dmsa", "fold_0"))),
]


def test_figures_are_those_of_the_files_they_cite():
    """Issue 27: numbers in the docs drifted from the committed files they cite. Each listed sentence is rendered
    from its file; a file or a sentence that changes alone fails here."""
    for document, text in FIGURES:
        rendered = text()
        assert rendered in " ".join((ROOT / document).read_text().split()), f"{document}: {rendered!r}"


H200 = "measurements/results/h200_2026-11-28/train_128_bf16.json"
# (document, the start of a table row, the committed files its figures come from)
TABLE_ROWS = [
    ("docs/speed_and_memory.md", "| the 2026-11-30 default | 7.85 |", [DEFAULTS, CPU + "traffic_and_count_128_pointwise.json"]),
    ("docs/speed_and_memory.md", "| **default** (`conv_stages=2`) |", [DEFAULT_NOW[0], COUNT_NOW[0]]),
    ("docs/speed_and_memory.md", "| `conv_stages=1`, the default until then", [DEFAULT_NOW[0], COUNT_NOW[0]]),
    ("docs/speed_and_memory.md", "| ... and in the decoder levels",
     [CPU + "traffic_and_count_128_defaults.json", CPU + "selective_parts_32x64x64_rounds3.json"]),
    ("docs/speed_and_memory.md", "| ... and in the stem",
     [CPU + "traffic_and_count_128_defaults.json", CPU + "selective_parts_32x64x64_rounds3.json"]),
    ("docs/speed_and_memory.md", "| PlainConvUNet (nnU-Net default) |", [H200]),
    ("docs/speed_and_memory.md", "| DynTransNet 0.1 |", [H200]),
    ("docs/speed_and_memory.md", "| DynTransNet 0.1, checkpointed |", [H200]),
]


OLD_COMPARISON = ["docs/comparison/report/summary.json", "docs/comparison/benchmark.json"]
H200_BEFORE = "measurements/results/h200_2026-11-27/train_step_128.json"
# (document, a phrase that one line of it holds, the committed files whose values that line's figures must be): prose
# lines and table rows whose figures come from files they do not name in the line itself
LINES = [
    ("docs/comparison/findings.md", "(26.7 against 10.7, p = 0.009)", OLD_COMPARISON),
    ("docs/comparison/findings.md", "Dice paired -0.35, liver -0.17", [SCREENS + "rm_decoder/summary.json"]),
    ("docs/baselines.md", "its step costs 1.17x at these widths", OLD_COMPARISON),
    *(("docs/comparison/README.md", row, OLD_COMPARISON) for row in (
        "| U-Net (`nnUNetTrainer_WallClock_NoMirroring`) |", "| DynTransNet | 17 /", "| SegResNet | 15 /",
        "| Attention U-Net | 16 /", "figures are 1.13, 1.35 and 1.61", "Dice: U-Net 92.45 /", "tumor Dice: U-Net 0.00 /",
        "26.43 / 24.90.", "p = 0.009), but only", "its liver Dice rose to 89.08,", "at these narrow widths its step",
        "at 0.96x the U-Net's step")),
    ("docs/comparison/README.md", "DynTransNet's CPU step is 0.82x", [DEFAULTS]),
    ("docs/comparison/screens/README.md", "(65.71 pooled over the 40 cases; liver 93.46)", [SCREENS + "lits_unet32/summary.json"]),
    ("docs/comparison/screens/README.md", "the benchmark's 1.14x is the network's step alone", [NARROW]),
    ("docs/comparison/screens/README.md", "(93.29 against 93.46, p = 0.47)", [SCREENS + "equal_time/summary.json"]),
    ("docs/comparison/screens/README.md", "tumor Dice 64.09 against the default's 61.02",
     [SCREENS + "equal_time_conv2/summary.json"]),
    ("docs/comparison/screens/README.md", "and the U-Net's 65.71 (p = 0.99)", [SCREENS + "equal_time_conv2/summary.json"]),
    ("docs/comparison/screens/README.md", "93.26 against 93.29 (p = 0.93)",
     [SCREENS + "equal_time_conv2/summary.json", SCREENS + "equal_time_conv2/vs_default/summary.json"]),
    ("docs/comparison/screens/README.md", "0.46). Per fold in the table above", [SCREENS + "equal_time_conv2/summary.json"]),
    ("docs/comparison/screens/README.md", "(step 0.93x, inference 0.87x, peak 0.92x", [DEFAULT_NOW[0]]),
    ("docs/comparison/screens/README.md", "Liver level (92.91 against 92.85", [SCREENS + "blocks_per_stage/summary.json"]),
    ("docs/comparison/screens/README.md", "(59.59 against 61.01, p = 0.06)", [SCREENS + "blocks_per_stage/summary.json"]),
    ("docs/comparison/screens/README.md", "Liver level (93.08 against 93.22", [SCREENS + "ablation_baseline/summary.json"]),
    *(("docs/demo/results.md", row, [DEMO]) for row in (
        "| DynTransNet | whole liver |", "| DynTransNet | tumor |", "| threshold baseline | whole liver |",
        "| threshold baseline | tumor |")),
    *(("docs/evaluation.md", phrase, ["docs/report/summary.json"]) for phrase in (
        "Whole-liver Dice 91.36", "(paired t-test p = 0.0076", "(p = 0.068).")),
    ("docs/speed_and_memory.md", "0.97), **inference <= 1.00x: met** (0.88x", [DEFAULTS]),
    ("docs/speed_and_memory.md", "(0.96x, 0.73 against 0.76 GiB", [DEFAULTS]),
    ("docs/speed_and_memory.md", "the 0.1 network's step took 1.62x", [H200]),
    ("docs/speed_and_memory.md", "with 0.89x its FLOPs and 1.98x its traffic", [CPU + "traffic_and_count_128.json"]),
    ("docs/speed_and_memory.md", "On 2026-11-27 (9.87x)", [H200_BEFORE]),
    ("docs/speed_and_memory.md", "1.75x before this round's changes",
     [CPU + "traffic_and_count_128_pointwise.json", CPU + "traffic_and_count_128_fmm_sum.json"]),
    ("docs/speed_and_memory.md", "step below the 0.1 network's 1.62x", [H200]),
    ("docs/speed_and_memory.md", "a faster step with 1.43x the activations", [CPU + "traffic_and_count_128_pointwise.json"]),
    ("docs/speed_and_memory.md", "ratio rose from 1.06 to 1.14", [CPU + "narrow_defaults_rounds3.json", NARROW]),
    ("docs/speed_and_memory.md", "rounds spread from 1.02 to 1.25", [CPU + "narrow_defaults_rounds3.json", NARROW]),
    ("docs/speed_and_memory.md", "1.26 / 1.25 / 1.32 / 1.73", ["measurements/results/cpu_2026-11-28/variants_32x64x64.json"]),
    ("docs/speed_and_memory.md", "gave Pearson r 0.999", ["measurements/results/cpu_benchmark_32x64x64.json"]),
    ("docs/speed_and_memory.md", "0.998 pooled (eight points", ["measurements/results/cpu_benchmark_32x64x64.json"]),
    ("docs/comparison/findings.md", "(89.1 against 92.6 over 40 cases", OLD_COMPARISON),
    ("docs/comparison/findings.md", "(tumor Dice 57.4 to 76.9, 65.71 over the 40 cases)", [SCREENS + "lits_unet32/summary.json"]),
    ("docs/baselines.md", "SegResNet segmented the liver best (Dice 93.2)", OLD_COMPARISON),
    ("docs/baselines.md", "learned the tumors well (43.3; the U-Net 10.7)", OLD_COMPARISON),
    ("docs/comparison/README.md", "Its tumor Dice is above the U-Net's (26.7 against 10.7,", OLD_COMPARISON),
    ("docs/comparison/README.md", "(43.3, p < 0.0001).", OLD_COMPARISON),
    ("docs/comparison/README.md", "the U-Net's tumor Dice is 10.7%", OLD_COMPARISON),
    ("docs/comparison/screens/README.md", "fold 4 ran alone: 829.6 s, 25.9 s an epoch", [SCREENS + "lits_unet32/seconds.json"]),
    ("docs/comparison/screens/README.md", "tumor Dice 61.6 / 63.2 / 69.1 / 57.4 / 76.9 on the", [SCREENS + "lits_unet32/summary.json"]),
    ("docs/comparison/screens/README.md", "54.0 / 76.7 against 61.6 / 63.2", [SCREENS + "equal_time/summary.json"]),
    ("docs/comparison/screens/README.md", "a quiet 5-epoch run, `timing_run.json`, took 26.1 s",
     [SCREENS + "equal_time_conv2/timing_run.json"]),
    ("docs/comparison/screens/README.md", "liver 90.1 / 92.1 against", [SCREENS + "conv_stages/summary.json"]),
    ("docs/comparison/screens/README.md", "tumor 57.1 / 51.4 against 52.6 / 44.6", [SCREENS + "conv_stages/summary.json"]),
    ("docs/comparison/screens/README.md", "without it against 92.4), so the two folds", [SCREENS + "ablation_dmsa/summary.json"]),
    ("docs/demo/results.md", "9.8 minutes in all", [DEMO]),
    ("docs/network.md", "measured 3.2-3.5x as slow as", ["measurements/results/h200_2026-11-27/gpu_check.json"]),
    ("docs/network.md", "(nnU-Net's default U-Net on the same plan: 31.2 M parameters", [H200]),
    ("docs/speed_and_memory.md", "4.9 ms as a product", [CPU + "pointwise.json"]),
    ("docs/speed_and_memory.md", "(U-Net 7.3%, the 0.1 network 4.0% model FLOP", [H200]),
    ("docs/speed_and_memory.md", "took 9.9x the U-Net's step", [H200_BEFORE]),
    ("docs/speed_and_memory.md", "float `attn_mask` cost 3.2-3.5x plain attention",
     ["measurements/results/h200_2026-11-27/gpu_check.json"]),
    ("docs/speed_and_memory.md", "the measured 9.77 GiB within 1%", [H200]),
    ("docs/speed_and_memory.md", "measured 7.37 GiB with checkpointing", [H200]),
]
# figures with a decimal point in the docs that are no measurement of this project: a setting, a version, a
# spacing typed in a command, a published score; (document, the phrase that holds them, why)
NOT_MEASURED = [
    ("README.md", "Python 3.10 or newer", "a version"),
    ("docs/install.md", "Python 3.15 and later", "a version"),
    ("docs/install.md", "makes 3.15+ skip that line", "versions"),
    ("docs/speed_and_memory.md", "--spacing 1 0.7676 0.7676", "a command's argument: LiTS's spacing"),
    ("docs/speed_and_memory.md", "128^3 at 1 x 0.77 x 0.77 mm, 6", "the plan's spacing"),
    ("docs/speed_and_memory.md", "voxels at 1.0 x 0.77 x 0.77 mm", "a fingerprint's spacing"),
    ("docs/speed_and_memory.md", "torch 2.11, nnU-Net's LiTS plan 128^3 at 1 x 0.77 x 0.77", "a version and a spacing"),
    ("docs/training.md", "0.99, weight decay 3e-5", "nnU-Net's momentum"),
    ("docs/training.md", "betas (0.9, 0.98), 50", "the recipe's betas"),
    ("docs/training.md", "betas (0.9, 0.98)); both decay", "the recipe's betas"),
    ("docs/comparison/screens/README.md", "betas 0.9/0.98)", "the recipe's betas"),
    ("docs/protocol.md", "(93.12 on LiTS, 86.12 on ATLAS)", "the paper's published scores"),
    ("docs/protocol.md", "(nnU-Net 80.09, ResEnc L 81.60)", "nnU-Net's published scores"),
    ("docs/large_images.md", "128x160x128 at 2.22 x 1.71 x 1.71 mm", "checked by tests/plans/test_planner.py"),
    ("README.md", "(MONAI >= 1.6, segmentation-models-pytorch)", "a version"),
    ("docs/install.md", "(MONAI >= 1.6, segmentation-models-pytorch)", "a version"),
    ("docs/install.md", "nnU-Net 2.8 finds trainers", "a version"),
    ("docs/baselines.md", "(MONAI >= 1.5, no `img_size`)", "a version"),
    ("docs/training.md", "(one trained by version 0.1, say)", "a version"),
    ("docs/training.md", "record was trained by version 0.1", "a version"),
    ("docs/training.md", "One nnU-Net 2.8.1 bug", "a version"),
    ("docs/training.md", "(torch >= 2.6)", "a version"),
    ("docs/training.md", "polynomial decay (exponent 0.9)", "nnU-Net's setting"),
    ("docs/developing.md", "a fold trained with version 0.1", "a version"),
    ("docs/network.md", "| option | default | version 0.1 |", "a version"),
    ("docs/network.md", "result folders trained by version 0.1", "a version"),
    ("docs/evaluation.md", "IoU exceeds 0.5", "the matching's threshold"),
    ("docs/evaluation.md", "(section 4.2)", "the paper's section"),
    ("docs/deployment.md", "(`-step_size`, 0.5)", "nnU-Net's setting"),
    ("docs/deployment.md", "on at least 99.9% of voxels", "the bound tests/test_nnunet_e2e.py asserts"),
    ("docs/protocol.md", "around 0.6-0.7 for every method", "published LiTS tumor scores"),
    ("docs/bad_input.md", "float labels holding 0.0, 1.0, 2.0 are fine, 0.5 is not", "label values, as examples"),
    ("docs/speed_and_memory.md", "(12.5% at head dim 64)", "arithmetic: one channel padded in 64"),
    ("docs/speed_and_memory.md", "batch, times 5.2 bytes per unit", "the constant BYTES_PER_UNIT; test_gpu_fit.py checks it"),
]


def _list_means(node) -> list:
    """The mean of every list of numbers in a JSON document (a run's epoch times, a benchmark's rounds)."""
    if isinstance(node, dict):
        return [m for child in node.values() for m in _list_means(child)]
    if isinstance(node, list):
        numbers = [v for v in node if isinstance(v, (int, float)) and not isinstance(v, bool)]
        own = [sum(numbers) / len(numbers)] if numbers and len(numbers) == len(node) else []
        return own + [m for child in node for m in _list_means(child)]
    return []


def _line_with(document: str, phrase: str) -> str:
    lines = [line for line in (ROOT / document).read_text().splitlines() if phrase in line]
    assert len(lines) == 1, f"{document}: {len(lines)} lines hold {phrase!r}"
    return lines[0]


def _file_values(name: str) -> list:
    """A file's numbers (:func:`_values`); for a report's summary.json also each trainer's Dice per fold, in percent
    (the report's "Dice per fold"); signs dropped, as the figures are compared without them."""
    document = _json(name)
    values = _values(document) + _list_means(document)
    epochs = ROOT / Path(name).parent / "epochs.json"
    if name.endswith("seconds.json") and epochs.is_file():  # a fold's seconds an epoch
        counts = json.loads(epochs.read_text())
        values += [seconds / counts[trainer][fold] for trainer, folds in document.items()
                   for fold, seconds in folds.items() if fold in counts.get(trainer, {})]
    if name.endswith("summary.json"):
        values += [v for trainer in document["per_case"] for cls in document["statistics"][trainer]
                   for v in TABLE._fold_means(document, trainer, cls).values()]
    return [abs(v) for v in values]


def test_lines_hold_only_figures_of_their_files():
    """Issue 27: every figure with a decimal point in the lines LINES names must be, at the decimals shown, a value
    of the files LINES gives for it (or derived from a report's per-case values as the report derives it)."""
    for document, phrase, files in LINES:
        line = _line_with(document, phrase)
        outside, figures = _figures_outside(line, [v for name in files for v in _file_values(name)])
        assert figures, f"{document}: no figure in the line holding {phrase!r}"
        assert not outside, f"{document}: {outside} in the line holding {phrase!r} are in none of {files}"


def _values(node) -> list:
    """Every number in a JSON document, also as millions and as a percentage (the units the tables use)."""
    if isinstance(node, dict):
        return [v for child in node.values() for v in _values(child)]
    if isinstance(node, list):
        return [v for child in node for v in _values(child)]
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return [node, node / 1e6, node * 100]
    return []


# a figure with a decimal point; one after "<" is a bound ("p < 0.0001"), not a value
FIGURE = r"(?<![\d.<])(?<!< )\d+\.\d+(?![\d.])"


def _figures_outside(line: str, values: list) -> tuple:
    """The figures with a decimal point in ``line`` that are none of ``values`` at the decimals shown, and how
    many figures the line holds."""
    import re

    figures = re.findall(FIGURE, line)
    return [f for f in figures if not any(round(v, len(f.split(".")[1])) == float(f) for v in values)], len(figures)


def test_table_rows_hold_only_figures_of_their_files():
    """Issue 27: every figure with a decimal point in these rows must be, at the decimals shown, a value of the
    files the row comes from; a figure edited by hand, or a file replaced under it, fails here. (Rows that name
    their files are checked by the next test, against the files they name.)"""
    for document, start, files in TABLE_ROWS:
        rows = [line for line in (ROOT / document).read_text().splitlines() if line.startswith(start)]
        assert len(rows) == 1, f"{document}: {len(rows)} rows start with {start!r}"
        outside, _ = _figures_outside(rows[0], [v for name in files for v in _values(_json(name))])
        assert not outside, f"{document}: {outside} in the row {start!r} are in none of {files}"

# nnU-Net's own files, which a row names as the user's (tests hold copies of them, which the row does not cite)
NNUNET_FILES = ("dataset.json", "splits_final.json", "plans.json", "dataset_fingerprint.json")


def _cited_files(line: str) -> list:
    """The JSON files a table row names (none for a line that is no table row, or for nnU-Net's own files)."""
    import re

    cited = re.findall(r"`([\w./-]+\.json)`", line) if line.startswith("|") else []
    return [name for name in cited if name not in NNUNET_FILES]


def _committed_json() -> list:
    import subprocess

    listed = subprocess.run(["git", "ls-files", "*.json"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in listed.split()]


def test_every_table_row_that_cites_files_holds_only_their_figures():
    """Issue 27: a table row of the README or the docs that names committed JSON files (by name, or by the end of
    their path) may hold no figure with a decimal point that none of those files gives, at the decimals shown.
    (Names of files a user has, such as nnU-Net's ``splits_final.json``, match no committed file and cite nothing.)"""
    import re

    committed = _committed_json()
    checked = 0
    for document in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for line in document.read_text().splitlines():
            cited = _cited_files(line)
            if not cited:
                continue
            files = [p for name in cited for p in committed if p.as_posix().endswith("/" + name.lstrip("./"))]
            if not files:
                continue
            outside, figures = _figures_outside(line, [v for f in files for v in _values(json.loads(f.read_text()))])
            assert not outside, f"{document.relative_to(ROOT)}: {outside} in the row {line[:60]!r} are in none of {cited}"
            checked += figures
    assert checked >= 40, f"only {checked} figures in rows that cite files: the rows or the pattern changed"


def test_every_figure_in_the_docs_is_checked_against_a_file():
    """Issue 27: no figure with a decimal point in the README or the docs may stand unchecked. Each must be in a
    committed report (rendered from its summary.json), in the screens table (rendered by table.py), in a sentence
    FIGURES renders, in a table row that names its files or TABLE_ROWS lists, in a line LINES names, or be no
    measurement (NOT_MEASURED, with why). A figure added by hand fails here until one of them checks it."""
    import re

    reports = set(_committed_reports())
    sentences: dict = {}
    for document, text in FIGURES:
        sentences.setdefault(document, []).append(text())
    committed = _committed_json()
    unchecked, seen = [], 0
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        if page in reports:
            continue
        document = page.relative_to(ROOT).as_posix()
        text = re.sub(r"<!-- screens table: begin -->.*?<!-- screens table: end -->", "", page.read_text(), flags=re.S)
        for line in text.splitlines():
            figures = re.findall(FIGURE, line)
            seen += len(figures)
            if not figures or any(d == document and line.startswith(start) for d, start, _ in TABLE_ROWS) \
                    or any(d == document and phrase in line for d, phrase, *_ in LINES + NOT_MEASURED):
                continue
            cited = _cited_files(line)
            if any(p.as_posix().endswith("/" + name.lstrip("./")) for name in cited for p in committed):
                continue
            unchecked += [f"{document}: {f} in {line.strip()[:80]!r}" for f in figures
                          if not any(f in sentence for sentence in sentences.get(document, []))]
    assert seen >= 300, f"only {seen} figures found outside the reports: the pattern or the docs changed"
    assert not unchecked, "\n".join(unchecked)


def _committed_reports() -> list:
    """Every report.md that ``dyntransnet_report`` wrote into the docs (beside its summary.json)."""
    return sorted(p for p in (ROOT / "docs").rglob("report.md") if (p.parent / "summary.json").is_file())


def test_every_committed_report_is_its_summarys_rendering():
    """Issue 27: a report's figures may not drift from the per-case values and statistics it was made from. Each
    committed report.md must be exactly what its summary.json renders to (``tables.report_from_summary``, the one
    way ``dyntransnet_report`` writes it); a figure edited by hand, or a summary replaced alone, fails here."""
    from nnunet_dyntransnet.evaluation.tables import report_from_summary

    reports = _committed_reports()
    assert len(reports) >= 20, [str(p) for p in reports]
    for report in reports:
        rendered = report_from_summary(json.loads((report.parent / "summary.json").read_text()))
        assert report.read_text() == rendered, f"{report.relative_to(ROOT)} is not its summary.json's rendering"


def test_relative_links_in_the_docs_point_to_files():
    """Issue 27: a link in docs/evaluation.md pointed to a file that was not there (relative to the page)."""
    import re

    broken = []
    for page in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for match in re.finditer(r"\]\(([^)\s]+)\)", page.read_text()):
            target = match.group(1).split("#")[0]
            if target and not target.startswith(("http://", "https://", "mailto:")) \
                    and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {match.group(1)}")
    assert not broken, broken


def test_the_demo_plans_its_budget_with_the_committed_quiet_run():
    """Issue 27: the demo planned its steps with 0.62 s a step, a figure in no committed file. The constant is the
    committed quiet run's seconds per step (docs/demo/results.json), to the two decimals it is written with."""
    from nnunet_dyntransnet.demo import QUIET_CPU_SECONDS_PER_STEP

    run = _json(DEMO)
    assert run["device"] == "cpu" and run["representative"]
    assert QUIET_CPU_SECONDS_PER_STEP == round(run["seconds_per_step"], 2)
