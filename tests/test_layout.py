"""The package's shape: no import cycles, and coding never imports training.

The graph is read from the source, with modules named as installed (pyproject's package-dir: ``codec/``
is ``mcodec.codec``, ``api/`` is ``mcodec``). Importing ``a.b.c`` from outside package ``a.b`` runs
``a/b/__init__`` first, so such an import is also an edge to ``a.b`` (the root ``mcodec``, the public
API that every module sits under, excepted). Cycles are sought among module-level imports: an import
inside a function runs at call time, when every module is loaded (the registry loads the codecs so).
What coding reaches is sought over every import, lazy ones included.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"api": "mcodec", "codec": "mcodec.codec", "entropy": "mcodec.entropy", "nerv": "mcodec.nerv"}
PACKAGE_DIRS["cli"] = "mcodec.cli"


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGE_DIRS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _import_nodes(tree: ast.Module, lazy: bool):
    """Import statements of a module: at module level (in ifs and trys too), and inside functions if
    ``lazy``."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif lazy or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))


def _with_packages(name: str, target: str, modules: dict[str, Path]) -> set[str]:
    """``target`` and the packages above it whose ``__init__`` importing it from ``name`` runs."""
    out, parts = {target}, target.split(".")
    for k in range(2, len(parts)):
        package = ".".join(parts[:k])
        if package in modules and not name.startswith(package + ".") and name != package:
            out.add(package)
    return out


def _imports(name: str, path: Path, modules: dict[str, Path], lazy: bool) -> set[str]:
    """The project modules ``name`` imports."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in _import_nodes(ast.parse(path.read_text()), lazy):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [
                f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix for a in node.names
            ]
        out |= {m for t in targets if t in modules for m in _with_packages(name, t, modules)}
    return out - {name}


def _graph(lazy: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules, lazy) for name, path in modules.items()}


def _closure(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for dep in graph[todo.pop()] - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def test_no_import_cycles():
    graph = _graph()
    cycles = sorted(name for name in graph if name in _closure(graph, name))
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_coding_never_imports_training():
    """The public API, every shipped codec and the media readers reach no training module."""
    graph = _graph(lazy=True)
    for start in ("mcodec.compress", "mcodec.codec.builtin", "mcodec.codec.media_io"):
        reached = _closure(graph, start)
        training = sorted(m for m in reached if m.startswith("mcodec.codec.training"))
        assert not training, f"{start} imports training code: {training}"


def test_decoding_loads_no_training_module():
    """At run time too: decode a reference vector of each medium in a fresh interpreter."""
    vectors = ROOT / "bitstream_spec" / "vectors"
    files = [
        vectors / n for n in ("fruits_meanscale_q4.mcd", "goforward_rvq_3k.mcd", "tree_64x48_hnerv_q1.mcd")
    ]
    code = (
        "import sys, mcodec\n"
        f"for f in {[str(f) for f in files]!r}:\n"
        "    mcodec.decode_bytes(open(f, 'rb').read())\n"
        "print(sorted(m for m in sys.modules if m.startswith('mcodec.codec.training')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_graph_sees_relative_and_absolute_imports():
    """The checker itself: known edges of both kinds are found, so an empty result means something."""
    graph, lazy = _graph(), _graph(lazy=True)
    assert "mcodec.codec.base" in graph["mcodec.codec.image.factorized"]  # absolute
    assert "mcodec.codec.image.factorized_model" in graph["mcodec.codec.image.factorized"]  # relative
    assert "mcodec.codec" in graph["mcodec.nerv.codec"]  # the package of a module imported from outside
    assert "mcodec.codec" not in graph["mcodec.codec.image.factorized"]  # ... not from inside
    assert "mcodec.codec.builtin" in lazy["mcodec.codec.registry"] - graph["mcodec.codec.registry"]
