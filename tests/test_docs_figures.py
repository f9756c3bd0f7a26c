"""Figures in the docs that are rendered from committed result files must be what those files give."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_screens_table_is_the_committed_reports():
    table = _module(ROOT / "docs" / "comparison" / "screens" / "table.py")
    assert table.check(ROOT / "docs" / "comparison" / "screens" / "README.md") == 0
    rendered = table.table()
    assert rendered.count("\n") >= 2, "at least one screen is committed"
    for folder, _ in table.SCREENS:
        if (table.HERE / folder / "summary.json").is_file():
            assert f"| {folder} |" in rendered


def _json(relative: str) -> dict:
    import json

    return json.loads((ROOT / relative).read_text())


def _row(document: dict, network: str) -> dict:
    return next(r for r in document["results"] if r["network"] == network)


CPU = "benchmarks/results/cpu_2026-11-30/"
NARROW = CPU + "narrow_defaults_rounds5.json"
DEFAULTS = "benchmarks/results/cpu_2026-11-30/defaults_32x64x64_rounds5.json"
COMPARISON = "docs/comparison/benchmark.json"
GPU_PROFILE = "benchmarks/results/h200_2026-11-27/gpu_profile.json"
DEMO = "docs/demo/results.json"

# (document, the text it must hold, rendered from the committed file it cites)
FIGURES = [
    ("README.md", lambda: "trains a step in **{:.2f}x** the U-Net's time, predicts in {:.2f}x, peaks at {:.2f}x".format(
        *(_row(_json(DEFAULTS), "DynTransNet")[k] for k in ("train_step_ratio", "infer_ratio", "peak_memory_ratio")))),
    ("README.md", lambda: "glibc's default heap peak, {:.2f}x".format(
        _row(_json(DEFAULTS), "DynTransNet")["default_malloc_peak_memory_ratio"])),
    ("README.md", lambda: "it still costs more: step {:.2f}x, inference {:.2f}x, memory {:.2f}x (5 rounds, `{}`".format(
        *(_row(_json(NARROW), "DynTransNet")[k] for k in ("train_step_ratio", "infer_ratio", "peak_memory_ratio")),
        NARROW)),
    ("README.md", lambda: "the comparison's own 3-round run of the same configuration measured {:.2f}x, {:.2f}x and "
                          "{:.2f}x".format(*(_row(_json(COMPARISON), "DynTransNet")[k]
                                             for k in ("train_step_ratio", "infer_ratio", "peak_memory_ratio")))),
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
    ("docs/demo_and_phantom.md", lambda: "{} epochs of 25 steps, {} steps against {} planned".format(
        _json(DEMO)["epochs"], _json(DEMO)["steps"], _json(DEMO)["steps_planned"])),
]


def test_figures_are_those_of_the_files_they_cite():
    """Issue 27: numbers in the docs drifted from the committed files they cite. Each listed sentence is rendered
    from its file; a file or a sentence that changes alone fails here."""
    for document, text in FIGURES:
        rendered = text()
        assert rendered in " ".join((ROOT / document).read_text().split()), f"{document}: {rendered!r}"


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
