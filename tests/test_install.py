"""A regular and an editable install into fresh virtual environments both make nnU-Net find the trainer.

Each venv sees the dependencies of the environment running the tests (a path file lists its
site-packages folders) and installs only this project (``--no-deps --no-build-isolation``),
so no network is needed and nothing depends on what the base interpreter holds: the tests
pass inside a virtual environment whose base Python has none of the dependencies, or an old
setuptools, as well as outside one.
"""
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from test_trainer_lookup import FIND, _clean_env

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _copy_source(dst: Path) -> Path:
    # the source alone: no virtual environments (.venv, CI's .venv-ci), caches or build output
    ignore = shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache", ".venv*", ".whl",
                                    ".device_out")
    shutil.copytree(REPO, dst, ignore=ignore)
    return dst


def _dependency_folders() -> list:
    """The site-packages folders of the running environment (venv, user and system), in search order."""
    return [p for p in sys.path if p and Path(p).is_dir() and Path(p).name in ("site-packages", "dist-packages")]


def _venv_with(tmp_path: Path, editable: bool) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        capture_output=True, text=True, check=True).stdout.strip())
    # plain path lines: the folders are appended to sys.path after the venv's own site-packages, and their .pth
    # files (the running environment's own registration of this plugin) are not executed
    (site_packages / "_test_dependencies.pth").write_text("\n".join(_dependency_folders()) + "\n")
    src = _copy_source(tmp_path / "src")
    target = ["-e", str(src)] if editable else [str(src)]
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", *target],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return python


@pytest.fixture(scope="module")
def venvs(tmp_path_factory):
    """Both installs at once (each is mostly waiting on pip): mode -> (its folder, its python)."""
    folders = {mode: tmp_path_factory.mktemp(mode) for mode in ("regular", "editable")}
    with ThreadPoolExecutor(2) as pool:
        pythons = {mode: pool.submit(_venv_with, folder, mode == "editable") for mode, folder in folders.items()}
        return {mode: (folders[mode], future.result()) for mode, future in pythons.items()}


@pytest.mark.parametrize("mode", ["regular", "editable"])
def test_install_makes_nnunet_find_the_trainer(venvs, mode):
    tmp_path, python = venvs[mode]
    editable = mode == "editable"
    probe = (
        FIND
        + "import os, nnunet_dyntransnet\n"
        + "print('PACKAGE', os.path.dirname(nnunet_dyntransnet.__file__))\n"
        + "print('EXT', os.environ['nnUNet_extTrainer'])\n"
    )
    proc = subprocess.run([str(python), "-c", probe], env=_clean_env(), capture_output=True, text=True, cwd="/")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    package = next(line.split(" ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("PACKAGE "))
    ext = next(line.split(" ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("EXT "))
    # the venv's own copy is the one in use, and its .pth put its own lookup folder first
    expected_root = tmp_path / ("src" if editable else "venv")
    assert Path(package).is_relative_to(expected_root), package
    assert ext.split(os.pathsep)[0] == os.path.join(package, "trainer_lookup")
    assert f"Using trainer 'nnUNetTrainerDynTransNet' from: {os.path.join(package, 'trainer_lookup')}" in out
    # PEP 829 (Python >= 3.15 runs .start entry points and skips the .pth import line of the same name):
    # the .start file sits beside the .pth, and its entry point alone registers the trainer folder
    site_packages = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        capture_output=True, text=True, check=True).stdout.strip())
    entry = (site_packages / "nnunet_dyntransnet_trainers.start").read_text().strip()
    assert (site_packages / "nnunet_dyntransnet_trainers.pth").is_file()
    as_315 = ("import os, pkgutil; os.environ.pop('nnUNet_extTrainer', None); "
              f"pkgutil.resolve_name({entry!r})(); print(os.environ['nnUNet_extTrainer'])")
    proc = subprocess.run([str(python), "-S", "-c", f"import site; site.addsitedir({str(site_packages)!r}); " + as_315],
                          env=_clean_env(), capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0 and proc.stdout.strip() == os.path.join(package, "trainer_lookup"), proc.stdout + proc.stderr
