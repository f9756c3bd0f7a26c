"""The package tree shows the architecture: the network imports no tool, and no module imports itself round."""
import subprocess
import sys


def test_the_network_imports_nothing_but_itself():
    """Importing DynTransNet loads only ``nnunet_dyntransnet.network.*`` (and the package root with its start-up
    hook), so the network can be read, tested and reused without the commands around it."""
    code = ("import sys, nnunet_dyntransnet.network\n"
            "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('nnunet_dyntransnet'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    outside = [m for m in loaded if not m.startswith("nnunet_dyntransnet.network")
               and m not in ("nnunet_dyntransnet", "nnunet_dyntransnet.trainer_search_path")]
    assert not outside, f"the network pulls in tool modules: {outside}"
    assert "nnunet_dyntransnet.network.units" in loaded  # the leaf that nnU-Net's memory unit lives in


def test_the_units_leaf_imports_nothing_of_the_package():
    import ast
    from pathlib import Path

    import nnunet_dyntransnet.network.units as units

    tree = ast.parse(Path(units.__file__).read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + \
               [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m and m.startswith("nnunet_dyntransnet")]
