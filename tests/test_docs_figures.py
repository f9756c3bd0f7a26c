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
