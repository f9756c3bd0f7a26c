"""The README's map of the package ("The package") names what the package holds, and nothing it does not."""
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "nnunet_dyntransnet"


def _tree() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The package"):]
    return section[section.index("```\n") + 4:section.index("\n```", section.index("```\n") + 4)]


def _named_in_package(tree: str) -> set:
    """The entries the tree lists under ``nnunet_dyntransnet/`` (indented two spaces; several per line, by comma)."""
    names = set()
    for line in tree.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            first = re.split(r"\s{2,}", line.strip())[0]
            names |= {name.strip().rstrip("/") for name in first.split(",")}
    return names


def test_the_readme_names_every_part_of_the_package_and_only_those():
    parts = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    parts |= {p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    named = _named_in_package(_tree())
    assert named == parts, (f"README's package map: missing {sorted(parts - named)}, naming what is not there "
                            f"{sorted(named - parts)}")


def test_the_readme_names_the_top_level_folders_that_exist():
    for line in _tree().splitlines():
        if not line.startswith(" ") and line.strip():
            folder = line.split()[0].rstrip("/")
            assert (ROOT / folder).is_dir(), f"README's package map names {folder}/, which the repository lacks"
