"""Which test files can see a bug in a source file (``mutation_check.py --all-fast``).

A bug inside a function can change only the tests that call that function's file. The check's
baseline run records, per test file, which source files of the repository it ran
(:func:`pytest_configure` installs a call tracer when ``NN_HANDLER_TRACE_FILE`` names the JSON
file to write); each mutation then runs only the test files that ran its file. Nothing is
listed by hand: a new module or test is traced like the others.

What the tracer cannot see is not excluded:

- an edit outside every function body (a constant, a class attribute, a default argument) runs
  once, when the module is first imported: every test file whose imports reach the module
  (:func:`reached_modules`, the static import graph) is selected, and every test file whose
  imports reach no module of the package (it may ``exec`` code that does, as the docs test);
- a test file whose imports reach ``subprocess`` or ``multiprocessing`` (directly or through its
  helper modules in ``tests/``) may run code in processes the tracer does not follow: it is
  selected for every file.

Static imports alone cannot narrow the selection here: ``NNHandler`` reaches every module of the
package (lazily, inside functions), so every test file that imports it reaches all of them.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import sys
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRACE_ENV = "NN_HANDLER_TRACE_FILE"

__all__ = [
    "TRACE_ENV",
    "edits_inside_functions",
    "module_name",
    "reached_modules",
    "select_test_files",
]

# Folders whose modules the tests import by their bare name (the tests put them on sys.path).
_BARE_NAME_DIRS = ("tests", "examples")
_SKIP_DIRS = {".git", ".venv", "__pycache__", "build", "dist"}
# A test file reaching one of these may run package code in another process.
_OTHER_PROCESSES = {
    "subprocess",
    "multiprocessing",
    "torch.multiprocessing",
    "concurrent.futures",
    "nbclient",
}


# ------------------------------------------------------------------ static imports
def module_name(path: Path | str, root: Path = ROOT) -> str:
    """The name a file is imported by: ``adapters/x.py`` -> ``nn_handler.adapters.x``,
    ``nn_handler/a/__init__.py`` -> ``nn_handler.a``, ``tests/models.py`` -> ``models``."""
    parts = list(Path(path).resolve().relative_to(root.resolve()).with_suffix("").parts)
    if parts[0] in _BARE_NAME_DIRS:
        parts = parts[-1:]
    elif parts[0] == "adapters":
        parts = ["nn_handler", *parts]
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _sources(root: Path) -> list[Path]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        if not any(part in _SKIP_DIRS or part.endswith(".egg-info") for part in rel):
            out.append(path)
    return out


@functools.lru_cache(maxsize=4)
def _index(root: Path) -> dict[str, Path]:
    """Module name -> file for every Python file (``tests/`` first where a bare name repeats)."""
    index: dict[str, Path] = {}
    tests = root / "tests"
    for path in sorted(_sources(root), key=lambda p: (p.parent != tests, str(p))):
        index.setdefault(module_name(path, root), path)
    return index


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _imports(path: Path, name: str) -> set[str]:
    """Every module the ``import`` statements of ``path`` name (anywhere in the file, with
    their parent packages, which Python imports first)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for each in found for m in _with_parents(each)}


@functools.lru_cache(maxsize=4)
def _graph(root: Path) -> dict[str, frozenset[str]]:
    return {name: frozenset(_imports(path, name)) for name, path in _index(root).items()}


def reached_modules(test_file: Path | str, root: Path = ROOT) -> set[str]:
    """Every module (of the repository or not) that ``test_file``, with ``conftest.py``, may
    import: the names its imports lead to, followed through the repository's own files."""
    graph = _graph(root.resolve())
    todo = [module_name(test_file, root), "conftest"]
    seen: set[str] = set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(graph.get(current, ()))
    return seen


def _helper_closure(test_file: Path, root: Path) -> set[str]:
    """What ``test_file`` imports through itself and ``tests/`` helpers only (not the package)."""
    graph, index = _graph(root), _index(root)
    todo, seen = [module_name(test_file, root), "conftest"], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        path = index.get(current)
        if path is not None and "tests" in path.relative_to(root).parts:
            todo.extend(graph[current])
    return seen


def edits_inside_functions(source: str, originals: list[str]) -> bool:
    """Whether every ``original`` text of ``source`` lies inside a function body."""
    tree = ast.parse(source)
    bodies = [
        (node.body[0].lineno, node.end_lineno or node.body[-1].lineno)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    for original in originals:
        first = source[: source.index(original)].count("\n") + 1
        last = first + original.rstrip("\n").count("\n")
        if not any(start <= first and last <= end for start, end in bodies):
            return False
    return True


# --------------------------------------------------------------------- selection
def select_test_files(
    source: str,
    trace: dict[str, list[str]],
    originals: list[str] | None = None,
    root: Path = ROOT,
) -> list[str]:
    """The test files (``tests/test_*.py``) that may see a change to ``source``.

    Args:
        source: the changed file, relative to ``root``.
        trace: test file -> the source files it ran (what the traced baseline wrote).
        originals: the changed texts; ``None`` counts as an edit outside any function.
        root: the repository.
    """
    root = root.resolve()
    target = module_name(root / source, root)
    text = (root / source).read_text()
    in_functions = originals is not None and edits_inside_functions(text, originals)
    out = []
    for test_file in sorted((root / "tests").glob("test_*.py")):
        rel = str(test_file.relative_to(root))
        helpers = _helper_closure(test_file, root)
        if helpers & _OTHER_PROCESSES:
            out.append(rel)  # runs code in processes the tracer does not follow
        elif source in trace.get(rel, ()):
            out.append(rel)
        elif not in_functions or rel not in trace:
            # Module-level code, or a file the baseline did not trace: whoever imports it,
            # and whoever imports nothing of the package yet may run it (exec of the docs).
            reached = reached_modules(test_file, root)
            blind = not any(m.split(".")[0] == "nn_handler" for m in reached)
            if rel == source or target in reached or blind:
                out.append(rel)
    return out


# ------------------------------------------------------------ the tracer (pytest plugin)
_STATE: dict[str, Any] = {"current": None, "used": defaultdict(set), "names": {}}


def _relative(filename: str) -> str | None:
    names = _STATE["names"]
    if filename not in names:
        real = os.path.realpath(filename)
        rel = None
        if real.startswith(_STATE["root"]) and real.endswith(".py"):
            rel = real[len(_STATE["root"]) :]
            if rel.startswith("nn_handler/adapters/"):
                rel = rel[len("nn_handler/") :]
        names[filename] = rel
    return names[filename]


def _tracer(frame: Any, event: str, arg: Any) -> None:
    if event == "call":
        current = _STATE["current"]
        if current is not None:
            rel = _relative(frame.f_code.co_filename)
            if rel is not None:
                _STATE["used"][current].add(rel)


def pytest_configure(config: Any) -> None:
    if os.environ.get(TRACE_ENV):
        _STATE["root"] = os.path.realpath(str(config.rootpath)) + os.sep
        sys.settrace(_tracer)
        threading.settrace(_tracer)


def pytest_runtest_setup(item: Any) -> None:
    if os.environ.get(TRACE_ENV):
        _STATE["current"] = str(Path(item.path).relative_to(item.config.rootpath))


def pytest_sessionfinish(session: Any) -> None:
    out = os.environ.get(TRACE_ENV)
    if out:
        sys.settrace(None)
        used = {k: sorted(v) for k, v in _STATE["used"].items()}
        Path(out).write_text(json.dumps(used, indent=0, sort_keys=True))
