"""The package's own import graph, read from the source (AST), never by importing it.

Usage::

    python tests/import_graph.py              # summary: cycles, function-level imports, boundary
    python tests/import_graph.py --edges      # every first-party edge, "importer -> imported"
    python tests/import_graph.py --dot > g.dot  # Graphviz (dot -Tsvg g.dot > g.svg)

``adapters/`` is read as ``nn_handler.adapters`` (how it is installed). An edge to ``a.b.c`` also
counts ``a.b`` and ``a`` (importing a module runs its packages' ``__init__``). Imports under
``if TYPE_CHECKING:`` are type-only: listed, never part of a cycle. A package that imports its
public names on first use (a PEP 562 ``_EXPORTS`` table, name -> defining submodule) is seen
through: ``from pkg import name`` imports the module the table names. ``tests/test_architecture.py``
holds the rules this graph must keep.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP = "nn_handler"
ENGINE = ("lightning", "pytorch_lightning", "lightning_fabric")

__all__ = ["Import", "Graph", "read_graph", "cycles", "main"]


@dataclass(frozen=True)
class Import:
    """One import statement's target, as the importer's source writes it.

    Attributes:
        importer: dotted name of the importing module.
        target: dotted name of the imported module (first-party: resolved; else the top name).
        line: line number in the importer.
        level: ``"module"`` (runs at import), ``"function"`` (inside a def, runs when called) or
            ``"type"`` (under ``if TYPE_CHECKING:``).
        first_party: the target is part of this package.
    """

    importer: str
    target: str
    line: int
    level: str
    first_party: bool


@dataclass
class Graph:
    modules: dict[str, Path]
    imports: list[Import]

    def edges(self, levels: tuple[str, ...] = ("module", "function")) -> dict[str, set[str]]:
        """First-party edges of the given levels, each importer to its targets and their
        packages."""
        out: dict[str, set[str]] = {m: set() for m in self.modules}
        for imp in self.imports:
            if imp.first_party and imp.level in levels:
                for target in _with_packages(imp.target, self.modules):
                    if target != imp.importer:
                        out[imp.importer].add(target)
        return out

    def function_level(self) -> list[Import]:
        """First-party imports inside functions, one per statement (``from a import b, c`` is
        one), in source order."""
        seen: set[tuple[str, int]] = set()
        out = []
        for imp in self.imports:
            if imp.first_party and imp.level == "function" and (imp.importer, imp.line) not in seen:
                seen.add((imp.importer, imp.line))
                out.append(imp)
        return out


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "adapters":
        parts = [TOP, *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    files = sorted((ROOT / "nn_handler").rglob("*.py")) + sorted((ROOT / "adapters").rglob("*.py"))
    return {_module_name(p): p for p in files if "__pycache__" not in p.parts}


def _with_packages(target: str, modules: dict[str, Path]) -> list[str]:
    parts = target.split(".")
    names = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return [n for n in names if n in modules]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _relative(package: str, target: str) -> str:
    """``target`` (``".sub"``, ``"..other.mod"``) as a dotted name, relative to ``package``."""
    level = len(target) - len(target.lstrip("."))
    if not level:
        return target
    base = package.split(".")
    base = base[: len(base) - (level - 1)]
    rest = target[level:]
    return ".".join(base + ([rest] if rest else []))


def lazy_exports(package: str, path: Path) -> dict[str, str]:
    """A package's ``_EXPORTS`` table (public name -> defining module), resolved; empty if none.
    Only string keys and values written in the literal are read (``**`` spreads are skipped)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        value = getattr(node, "value", None)
        if any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in targets) and isinstance(
            value, ast.Dict
        ):
            return {
                k.value: _relative(package, v.value)
                for k, v in zip(value.keys, value.values)
                if isinstance(k, ast.Constant)
                and isinstance(k.value, str)
                and isinstance(v, ast.Constant)
                and isinstance(v.value, str)
            }
    return {}


def _imports_of(
    module: str,
    path: Path,
    modules: dict[str, Path],
    exports: dict[str, dict[str, str]] | None = None,
) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    exports = exports or {}
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def add(target: str, line: int, level: str) -> None:
        first = target == TOP or target.startswith(TOP + ".")
        found.append(Import(module, target if first else target.split(".")[0], line, level, first))

    def visit(node: ast.AST, level: str) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno, level)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # ``from pkg import sub`` imports the submodule when one exists by that name, and
                # the defining module when a lazy package's table names one.
                if sub not in modules:
                    sub = exports.get(base, {}).get(alias.name, base)
                add(sub, node.lineno, level)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, "type")
            for child in node.orelse:
                visit(child, level)
            return
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            level = "function" if level == "module" else level
        for child in ast.iter_child_nodes(node):
            visit(child, level)

    visit(tree, "module")
    return found


def read_graph() -> Graph:
    """The whole package's imports."""
    modules = source_files()
    exports = {
        name: table
        for name, path in modules.items()
        if path.name == "__init__.py" and (table := lazy_exports(name, path))
    }
    imports = [
        imp for name, path in modules.items() for imp in _imports_of(name, path, modules, exports)
    ]
    return Graph(modules, imports)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strongconnect(w)
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
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for v in sorted(edges):
        if v not in index:
            strongconnect(v)
    return sorted(found)


def is_core(module: str) -> bool:
    """Core: the package minus the engine side (``nn_handler.adapters``)."""
    return not (module == f"{TOP}.adapters" or module.startswith(f"{TOP}.adapters."))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", action="store_true", help="print every first-party edge")
    parser.add_argument("--dot", action="store_true", help="print the graph in Graphviz format")
    args = parser.parse_args(argv)
    graph = read_graph()
    edges = graph.edges()
    if args.dot:
        print("digraph nn_handler {")
        for a, targets in sorted(edges.items()):
            for b in sorted(targets):
                print(f'  "{a}" -> "{b}";')
        print("}")
        return 0
    if args.edges:
        for imp in sorted(graph.imports, key=lambda i: (i.importer, i.line)):
            if imp.first_party:
                print(f"{imp.importer}:{imp.line} -> {imp.target} [{imp.level}]")
        return 0
    function_level = graph.function_level()
    engine_in_core = [
        i
        for i in graph.imports
        if i.level == "module"
        and is_core(i.importer)
        and (i.target in ENGINE or (i.first_party and not is_core(i.target)))
    ]
    found = cycles(edges)
    print(f"{len(graph.modules)} modules, {sum(len(t) for t in edges.values())} first-party edges")
    print(f"cycles (module and function level): {len(found)}")
    for component in found:
        print("  " + " ".join(component))
    print(f"function-level first-party imports: {len(function_level)}")
    for imp in function_level:
        print(f"  {imp.importer}:{imp.line} -> {imp.target}")
    print(f"module-level engine imports in the core: {len(engine_in_core)}")
    for imp in engine_in_core:
        print(f"  {imp.importer}:{imp.line} -> {imp.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
