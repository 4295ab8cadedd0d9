"""The package's structure as a contract (ARCHITECTURE.md): sub-packages in layer order, every
import pointing down the layers, no import cycle between modules, imports inside functions only
where start-up time needs them, and the layout ARCHITECTURE.md describes.

Every ``import`` and ``from … import`` is read with ``ast``, at module level and inside
functions alike; nothing is imported or run.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "trialbayes"
ROOT = SRC.parents[1]

#: lowest first; a package may import only from packages before it in this list
LAYERS = [
    "core",
    "config",
    "results",
    "data",
    "estimands",
    "inference",
    "models",
    "nextphase",
    "calibration",
    "plots",
    "report",
    "routes",
    "cli",
]
#: the files that may sit directly in src/trialbayes/ (the top layer, "cli")
TOP_FILES = {"__init__.py", "__main__.py", "cli.py"}
#: third-party libraries an import inside a function may defer (each with a "lazy:" reason)
DEFERRABLE = {"distributed", "nutpie", "pytensor", "numba"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "cli"


def targets(module: str, node: ast.AST) -> list[str]:
    """The trialbayes modules an import statement reaches (a package means its __init__)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".")
            if MODULES[module].name != "__init__.py":
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            stem = ".".join(base + ([node.module] if node.module else []))
        else:
            stem = node.module or ""
        # ``from pkg import mod`` reaches the module; ``from pkg import name`` the package
        names = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in MODULES else stem for a in node.names]
    out = []
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name.startswith("trialbayes") and name != module:
            out.append(name)
    return sorted(set(out))


def imports() -> list[tuple[str, str, int, bool]]:
    """(importer, imported, line, inside a function) for every import between trialbayes
    modules."""
    out = []
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for t in targets(mod, node):
                    out.append((mod, t, node.lineno, id(node) not in top))
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), and self-loops."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_package_folder_holds_only_the_front_door_and_sub_packages():
    files = {p.name for p in SRC.iterdir() if p.suffix == ".py"}
    assert files == TOP_FILES, f"modules directly in src/trialbayes/: {sorted(files - TOP_FILES)}"
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(LAYERS) - {"cli"}, sorted(packages ^ (set(LAYERS) - {"cli"}))
    strays = [
        p for p in SRC.rglob("*") if p.is_dir() and p.name not in ("__pycache__", "templates")
        and not (p / "__init__.py").exists()
    ]
    assert not strays, f"folders without __init__.py: {strays}"


def test_every_import_points_down_the_layers():
    """An import from a package later in LAYERS (module level or inside a function) is refused;
    an import within one package is fine (its cycles are the next test's)."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    up = [
        f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)}) at line {line}"
        + (" inside a function" if inner else "")
        for src, dst, line, inner in imports()
        if rank[layer(dst)] > rank[layer(src)]
    ]
    assert not up, "imports pointing up the layers:\n" + "\n".join(up)


def test_no_import_cycle_between_modules():
    edges: dict[str, set[str]] = defaultdict(set)
    for mod in MODULES:
        edges[mod]
    for src, dst, _, _ in imports():
        edges[src].add(dst)
    found = cycles(edges)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_a_package_is_not_imported_by_its_own_modules():
    """A module importing its own package's __init__ would tie it to every sibling."""
    bad = [
        f"{src} imports its package {dst} (line {line})"
        for src, dst, line, _ in imports()
        if MODULES[dst].name == "__init__.py" and src.startswith(dst + ".")
    ]
    assert not bad, "\n".join(bad)


def test_imports_inside_functions_only_where_start_up_needs_them():
    """Inside a function: trialbayes modules only in the front door and the CLI (start-up time of
    ``import trialbayes`` and ``trialbayes --help``); third-party libraries only the few whose
    import is slow and not always needed, each with a ``lazy:`` reason on its line or the line
    above."""
    bad = []
    for mod, path in MODULES.items():
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in top:
                continue
            where = f"{mod}:{node.lineno}: {lines[node.lineno - 1].strip()}"
            if targets(mod, node):
                if layer(mod) != "cli":
                    bad.append(where)
                continue
            root = (
                node.names[0].name if isinstance(node, ast.Import) else node.module or ""
            ).split(".")[0]
            reason = _has_reason(lines, node.lineno - 1)
            if layer(mod) != "cli" and (root not in DEFERRABLE or not reason):
                bad.append(where)
    assert not bad, "imports inside functions:\n" + "\n".join(bad)


def _has_reason(lines: list[str], i: int) -> bool:
    """A ``lazy:`` comment on line ``i`` or on the comment / import lines right above it."""
    while i >= 0:
        text = lines[i].strip()
        if "lazy:" in text:
            return True
        if not text.startswith(("#", "from ", "import ", ")")) and not text.endswith(","):
            return False
        i -= 1
    return False


def test_each_package_states_its_public_names():
    """Every package's __init__ has a docstring and an ``__all__`` of names it defines or imports
    from its own modules."""
    for mod, path in MODULES.items():
        if path.name != "__init__.py" or mod == "trialbayes":
            continue
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), f"{mod}: no docstring"
        all_ = [
            n.value for n in tree.body
            if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__"
                                                  for t in n.targets)
        ]
        assert all_, f"{mod}: no __all__"
        names = {e.value for e in all_[0].elts}
        bound = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom)
                 for a in n.names}
        assert names <= bound, f"{mod}: __all__ names not imported: {sorted(names - bound)}"
        for n in tree.body:
            if isinstance(n, ast.ImportFrom):
                assert n.level == 1, f"{mod}: the package exports only its own modules' names"


def test_no_package_exports_a_name_of_its_own_modules():
    """``routes.validate`` must stay the module: a package attribute named like a submodule
    shadows it (``import trialbayes.routes.validate as v`` would give the function)."""
    for mod, path in MODULES.items():
        if path.name != "__init__.py":
            continue
        subs = {p.stem for p in path.parent.glob("*.py")} | {
            p.name for p in path.parent.iterdir() if (p / "__init__.py").exists()
        }
        tree = ast.parse(path.read_text())
        bound = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom)
                 for a in n.names if n.module}
        assert not bound & subs, f"{mod} exports {sorted(bound & subs)}, names of its modules"


def test_the_config_stops_at_the_routes():
    """Below routes/, no module imports the whole ``Config``: the routes cut it into narrow
    inputs (a model spec, a data source, settings, output settings, ...)."""
    bad = []
    for mod, path in MODULES.items():
        if layer(mod) in ("config", "routes", "cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and any(a.name == "Config" for a in node.names):
                bad.append(f"{mod}:{node.lineno}")
    assert not bad, "modules below the routes importing Config: " + ", ".join(bad)


def test_the_front_door_exports_from_packages_and_lists_them():
    import trialbayes

    for name, where in trialbayes._EXPORTS.items():
        assert where in LAYERS, f"{name} is exported from {where}, not from a package"
        assert getattr(trialbayes, name) is getattr(
            __import__(f"trialbayes.{where}", fromlist=[name]), name
        )
    assert set(trialbayes.__all__) <= set(dir(trialbayes))


def test_architecture_md_lists_every_package_in_layer_order():
    """ARCHITECTURE.md's tree names each package once, in the order of LAYERS."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    found = re.findall(r"^\s*([a-z_]+)/\s", text, re.M)
    packages = [p for p in LAYERS if p != "cli"]
    listed = [p for p in found if p in packages]
    assert listed == packages, f"ARCHITECTURE.md lists {listed}, the layers are {packages}"


@pytest.mark.parametrize("bad_import", ["from ..routes.validate import validate"])
def test_the_layer_check_catches_an_upward_import(tmp_path, bad_import):
    """The checks above can fail: an upward import in a core module is seen."""
    mod = "trialbayes.core.flags"
    node = ast.parse(bad_import).body[0]
    reached = targets(mod, node)
    rank = {name: i for i, name in enumerate(LAYERS)}
    assert reached and all(rank[layer(t)] > rank[layer(mod)] for t in reached)
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
