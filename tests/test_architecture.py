"""The package's import graph (ARCHITECTURE.md): every package imports only from lower layers,
and no modules import each other in a circle. Every import counts, also those inside functions
and under ``TYPE_CHECKING``: a lazy import hides an import-time circle, not a design one."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "vidsift"

# Bottom to top. A module may import from its own package and from packages of lower layers only.
LAYERS: list[set[str]] = [
    {"errors", "lazy"},
    {"types", "registry", "logs", "hub", "threads"},
    {"frames"},
    {"selectors"},
    {"pipeline"},
    {"stream"},
    {"batch", "serve"},
    {"bench", "eval"},
    {"probe"},
    {""},  # the curated API, vidsift/__init__.py
    {"cli"},
    {"__main__"},
]
LAYER = {package: i for i, packages in enumerate(LAYERS) for package in packages}
# Module circles kept on purpose, with the reason. probe's __init__ wraps probe.evaluate in a
# function-level import and probe.evaluate reads probe's checkpoint_path (probe is owned elsewhere).
ALLOWED_CIRCLES = [{"vidsift.probe", "vidsift.probe.evaluate"}]


def _modules(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package's __init__)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def import_graph(root: Path = ROOT) -> dict[str, set[tuple[str, int]]]:
    """Module -> {(imported vidsift module, line)}, from every import statement in the file."""
    modules = _modules(root)
    top = root.name
    graph: dict[str, set[tuple[str, int]]] = {}
    for name, (path, is_package) in modules.items():
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [f"{module}.{alias.name}" for alias in node.names]  # a name or a submodule
            else:
                continue
            for target in targets:
                while target and target not in modules:  # strip attribute names down to the module
                    target = target.rpartition(".")[0]
                if target.startswith(top) and target != name:
                    edges.add((target, node.lineno))
    return graph


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def upward_imports(graph: dict[str, set[tuple[str, int]]]) -> list[str]:
    bad = []
    for module, edges in graph.items():
        for target, line in sorted(edges):
            src, dst = _package(module), _package(target)
            if src != dst and LAYER[dst] >= LAYER[src]:
                bad.append(f"{module}:{line} imports {target} (layer {LAYER[dst]} >= {LAYER[src]})")
    return bad


def circles(graph: dict[str, set[tuple[str, int]]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(t for t, _ in graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(t for t, _ in graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def private_imports(root: Path = ROOT) -> list[str]:
    """``from X import Y`` across packages where a module of X's path or Y is private (``_name``)."""
    found = []
    for name, (path, is_package) in _modules(root).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                module = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith(root.name) or _package(module) == _package(name):
                continue
            private = [p for p in module.split(".") if p.startswith("_") and not p.startswith("__")]
            private += [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            if private:
                found.append(f"{name}:{node.lineno} imports {', '.join(private)} from {module}")
    return found


def test_every_package_imports_only_from_lower_layers():
    graph = import_graph()
    assert {_package(m) for m in graph} <= set(LAYER), "a new package needs a layer in LAYERS (and in ARCHITECTURE.md)"
    assert upward_imports(graph) == []


def test_no_private_name_is_imported_across_packages():
    assert private_imports() == []


def test_no_modules_import_each_other_in_a_circle():
    assert [c for c in circles(import_graph()) if c not in ALLOWED_CIRCLES] == []


def test_the_checks_find_an_upward_import_a_circle_and_a_private_name(tmp_path):
    """The checks above can fail: a tiny package with one upward import, one circle and private imports
    across packages (a private name inside its own package is fine)."""
    pkg = tmp_path / "vidsift"
    for folder in ("frames", "pipeline"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "frames" / "a.py").write_text("def f():\n    from ..pipeline import b\n")  # function level
    (pkg / "pipeline" / "b.py").write_text("from . import c\n")
    (pkg / "pipeline" / "c.py").write_text("from .b import x\n")
    graph = import_graph(pkg)
    assert upward_imports(graph) == ["vidsift.frames.a:2 imports vidsift.pipeline.b (layer 4 >= 2)"]
    assert circles(graph) == [{"vidsift.pipeline.b", "vidsift.pipeline.c"}]
    (pkg / "frames" / "_d.py").write_text("X = 1\n_Y = 2\n")
    (pkg / "pipeline" / "e.py").write_text("from ..frames._d import X\nfrom ..frames import _d\nfrom . import _f\n")
    assert private_imports(pkg) == ["vidsift.pipeline.e:1 imports _d from vidsift.frames._d",
                                    "vidsift.pipeline.e:2 imports _d from vidsift.frames"]


def test_importing_the_pipeline_loads_neither_faiss_nor_a_decoder():
    """``from vidsift.pipeline import Pipeline, Answer`` (and the shared types) stays light: FAISS
    loads with the selectors that use it, PyAV and decord when a video is opened."""
    code = ("import sys; import vidsift.pipeline; from vidsift.pipeline import Answer, Pipeline; import vidsift.types; "
            "print(sorted(m for m in ('faiss', 'av', 'decord') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.stdout.strip() == "[]", (done.stdout, done.stderr)
