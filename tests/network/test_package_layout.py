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


def _package_files():
    """Module name -> its file. The repository's ``trainers/`` and ``plans/`` are installed as
    ``nnunet_dyntransnet.trainers`` and ``.plans``."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    files = {}
    for folder, package in (("nnunet_dyntransnet", "nnunet_dyntransnet"), ("trainers", "nnunet_dyntransnet.trainers"),
                            ("plans", "nnunet_dyntransnet.plans")):
        for path in (root / folder).rglob("*.py"):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join([package, *parts])] = path
    return files


def _module_scope_imports():
    """Module -> the package's modules it imports at module scope (function-level imports run later, on call)."""
    import ast

    files = _package_files()
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text())
        imported = set()
        for node in tree.body:  # module scope only
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nnunet_dyntransnet"):
                imported.add(node.module)
                imported |= {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.startswith("nnunet_dyntransnet")}
        graph[name] = {m for m in imported if m in files and m != name}
    return graph


def test_no_module_imports_itself_round():
    """The promise of this file's title, checked: no cycle among the package's modules' module-scope imports (a
    package's ``__init__`` importing its own modules is the package, not a cycle)."""
    graph = _module_scope_imports()
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            # a package and the modules it re-exports, which import only their siblings, are one unit
            inner = {m for m in component if not any(m != p and m.startswith(p + ".") for p in component)}
            if len(component) > 1 and len(inner) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"modules that import each other at module scope: {cycles}"


# The package's layers, lowest first (docs/developing.md, "Layers"): a module imports only from its own layer or
# below, at module scope and inside functions alike (a function-level import hides coupling, it does not remove it).
LAYERS = [
    ["nnunet_dyntransnet.utilities", "nnunet_dyntransnet.trainer_search_path"],
    ["nnunet_dyntransnet.network", "nnunet_dyntransnet.baseline_networks"],
    ["nnunet_dyntransnet.trainers", "nnunet_dyntransnet.trainer_lookup", "nnunet_dyntransnet.plans"],
    ["nnunet_dyntransnet.dataset_conversion", "nnunet_dyntransnet.inference", "nnunet_dyntransnet.benchmark"],
    ["nnunet_dyntransnet.evaluation"],
    ["nnunet_dyntransnet.protocol", "nnunet_dyntransnet.demo"],
]


def _layer(module: str):
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def _all_imports():
    """Module -> every module of the package it imports, at any depth of its code."""
    import ast

    found = {}
    for name, path in _package_files().items():
        tree = ast.parse(path.read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | \
                   {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        found[name] = {m for m in imported if m.startswith("nnunet_dyntransnet.")}
    return found


def test_every_module_imports_only_its_layer_or_below():
    """Issue 27: ``training`` and ``trainers`` imported each other through function-level imports, and the demo read
    epoch times through the cluster scheduler. Every module has a layer, and no import goes up."""
    imports = _all_imports()
    unplaced = sorted(m for m in imports if m != "nnunet_dyntransnet" and _layer(m) is None)
    assert not unplaced, f"modules in no layer (add them to LAYERS and docs/developing.md): {unplaced}"
    upward = sorted(f"{m} -> {t}" for m, targets in imports.items() if _layer(m) is not None
                    for t in targets if _layer(t) is not None and _layer(t) > _layer(m))
    assert not upward, upward


def test_no_function_runs_longer_than_a_screen():
    """Issue 27: protocol.main (133 lines), markdown_report (119), demo.main (90), make_case (84), ... were split into
    their steps; a function longer than 60 lines of code (its docstring aside) fails here."""
    import ast

    long = []
    for name, path in _package_files().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) is not None else node.body
                lines = node.end_lineno - body[0].lineno + 1 if body else 0
                if lines > 60:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, long
