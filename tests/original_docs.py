"""Reading the original NNHandler's documentation pages, the contract our drop-in is held to.

The pages are not part of this repository (they are the original project's text): they sit in
the workplace's ``shared/spec/original-docs``, found by walking up from the repository (or from
the local repository it was cloned from), or at ``$NN_HANDLER_ORIGINAL_DOCS``. Tests that need
them skip when they are absent.

Three kinds of checks read a page's ```python blocks:
- examples run as a user would run them (:func:`run_blocks`), with named, listed adaptations;
- signature blocks (``handler.train(epochs: int, validate_every: int = 1, ...)``) are compared
  with our signatures: every documented parameter exists, with the documented default, in the
  documented relative order (:func:`signature_problems`);
- class blocks (the original's class definitions) are compared with our classes: every public
  method and property, the constructor's parameters, the public attributes set in ``__init__``,
  enum members (:func:`class_problems`).
"""

from __future__ import annotations

import ast
import enum
import importlib.util
import inspect
import os
import re
import sys
import textwrap
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
_FENCE = re.compile(r"^([ \t]*)```python[ \t]*\n(.*?)^\1```", re.S | re.M)


def find_docs() -> Path | None:
    """The folder of the original's documentation, or ``None``."""
    env = os.environ.get("NN_HANDLER_ORIGINAL_DOCS")
    if env:
        return Path(env)
    for start in (ROOT, _local_origin()):
        for folder in (start, *start.parents) if start else ():
            candidate = folder / "shared" / "spec" / "original-docs"
            if candidate.is_dir():
                return candidate
    return None


def _local_origin() -> Path | None:
    """The repository this checkout was cloned from, when that is a folder on this machine (a
    clean clone made for CI sits outside the workplace, its origin inside)."""
    import subprocess

    try:
        url = subprocess.run(
            ["git", "-C", str(ROOT), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = Path(url.removeprefix("file://"))
    return path.resolve() if url and path.is_dir() else None


DOCS = find_docs()
needs_docs = pytest.mark.skipif(
    DOCS is None,
    reason="the original's documentation (shared/spec/original-docs) is not in this workplace; "
    "set NN_HANDLER_ORIGINAL_DOCS to its folder",
)


def blocks(page: str) -> list[str]:
    """The ```python blocks of ``page`` (a path relative to the docs folder), dedented."""
    assert DOCS is not None
    text = (DOCS / page).read_text(encoding="utf-8")
    return [textwrap.dedent(body) for _, body in _FENCE.findall(text)]


def pages() -> list[str]:
    assert DOCS is not None
    return sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))


# ------------------------------------------------------------------ module availability
def missing_modules(names: Iterable[str]) -> list[str]:
    """The modules among ``names`` that do not exist (yet) in this installation."""
    out = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            out.append(name)
    return out


def skip_unless_modules(names: Iterable[str]) -> None:
    """Skip the calling test while a module of the map that another change adds is missing."""
    missing = missing_modules(names)
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (another part of the module map, not yet here)")


# ------------------------------------------------------------------------ running pages
@dataclass(frozen=True)
class Edit:
    """One adaptation of a documented example: ``old`` becomes ``new``, for ``why``."""

    old: str
    new: str
    why: str


def adapt(code: str, edits: Iterable[Edit] = ()) -> str:
    """The block as an installed user writes it (``src.nn_handler`` → ``nn_handler``), with the
    listed adaptations; each must apply, so a changed page cannot silently skip one."""
    code = code.replace("src.nn_handler", "nn_handler")
    for edit in edits:
        assert edit.old in code, f"adaptation no longer applies: {edit.old!r} ({edit.why})"
        code = code.replace(edit.old, edit.new)
    return code


def page_module(monkeypatch: pytest.MonkeyPatch, name: str) -> types.ModuleType:
    """An importable module to run a page in, like a user's own script module: classes it
    defines are stored in checkpoints by import path and found again on load."""
    module = types.ModuleType(f"original_docs_{name}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def run_blocks(
    namespace: dict[str, Any], page: str, indices: Iterable[int], edits: dict[int, list[Edit]]
) -> None:
    for i in indices:
        code = adapt(blocks(page)[i], edits.get(i, ()))
        exec(compile(code, f"{page}[block {i}]", "exec"), namespace)  # noqa: S102


# -------------------------------------------------------------------- signature checks
@dataclass
class Param:
    name: str
    kind: str  # "positional", "keyword_only", "var_positional", "var_keyword"
    default: str | None  # source text of the documented default, None when there is none


def _params(args: ast.arguments) -> list[Param]:
    out: list[Param] = []
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for arg, default in zip(positional, defaults):
        out.append(Param(arg.arg, "positional", ast.unparse(default) if default else None))
    if args.vararg:
        out.append(Param(args.vararg.arg, "var_positional", None))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        out.append(Param(arg.arg, "keyword_only", ast.unparse(default) if default else None))
    if args.kwarg:
        out.append(Param(args.kwarg.arg, "var_keyword", None))
    return [p for p in out if p.name not in ("self", "cls")]


def _balanced(text: str, start: int) -> str:
    """The text between the parenthesis at ``start`` and its match."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    raise ValueError(f"unbalanced parentheses after {text[start : start + 40]!r}")


_CALL = re.compile(r"^[ \t]*(?:def[ \t]+|(?:handler|NNHandler)\.)(\w+)\(", re.M)


def documented_signatures(code: str) -> dict[str, list[Param]]:
    """``{method: params}`` of every ``handler.m(...)``, ``NNHandler.m(...)`` and ``def m(...)``
    line of a signature block (comments and return annotations ignored)."""
    found: dict[str, list[Param]] = {}
    for match in _CALL.finditer(code):
        inner = _balanced(code, match.end() - 1)
        inner = "\n".join(line.split("#", 1)[0] for line in inner.splitlines())
        tree = ast.parse(f"def f({inner}):\n    pass\n")
        found[match.group(1)] = _params(tree.body[0].args)  # type: ignore[attr-defined]
    return found


_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: "positional",
    inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
    inspect.Parameter.KEYWORD_ONLY: "keyword_only",
    inspect.Parameter.VAR_POSITIONAL: "var_positional",
    inspect.Parameter.VAR_KEYWORD: "var_keyword",
}


def signature_problems(
    where: str,
    documented: list[Param],
    ours: Callable[..., Any],
    namespace: dict[str, Any],
    check_order: bool = True,
) -> list[str]:
    """What a call written against ``documented`` would find different in ``ours``."""
    sig = inspect.signature(ours)
    params = {n: p for n, p in sig.parameters.items() if n not in ("self", "cls")}
    kinds = {_KINDS[p.kind] for p in params.values()}
    problems = []
    order = []
    for doc in documented:
        if doc.kind in ("var_positional", "var_keyword"):
            if doc.kind not in kinds:
                problems.append(f"{where}: takes no {'**' if 'keyword' in doc.kind else '*'}args")
            continue
        mine = params.get(doc.name)
        if mine is None:
            if "var_keyword" in kinds and doc.kind == "keyword_only":
                continue
            problems.append(f"{where}: no parameter {doc.name!r}")
            continue
        order.append(list(params).index(doc.name))
        if doc.default is None:
            continue
        if mine.default is inspect.Parameter.empty:
            problems.append(f"{where}: {doc.name} has no default (documented {doc.default})")
            continue
        expected = eval(doc.default, namespace)  # noqa: S307 - the documentation's own literal
        if expected != mine.default:
            problems.append(
                f"{where}: {doc.name} defaults to {mine.default!r}, documented {doc.default}"
            )
    if check_order and order != sorted(order):
        problems.append(f"{where}: parameters are not in the documented order")
    return problems


# ------------------------------------------------------------------------ class checks
@dataclass
class ClassSpec:
    """How to check one documented class against ours."""

    ours: type
    make: Callable[[], Any] | None = None  # builds an instance to look for __init__ attributes
    check_order: bool = True
    skip_attributes: frozenset[str] = field(default_factory=frozenset)
    skip_methods: frozenset[str] = field(default_factory=frozenset)  # with a reason at the use


def _init_attributes(init: ast.FunctionDef) -> set[str]:
    names = set()
    for node in ast.walk(init):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
                and not target.attr.startswith("_")
            ):
                names.add(target.attr)
    return names


def _is_property(node: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list)


def _is_setter(node: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Attribute) and d.attr == "setter" for d in node.decorator_list)


def _has_setter(cls: ast.ClassDef, name: str) -> bool:
    return any(
        isinstance(d, ast.Attribute) and d.attr == "setter" and getattr(d.value, "id", "") == name
        for node in cls.body
        if isinstance(node, ast.FunctionDef)
        for d in node.decorator_list
    )


def class_problems(
    code: str, specs: dict[str, ClassSpec], namespace: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """``(problems, checked class names)`` for the documented classes found in ``code``."""
    code = re.sub(r"class NNHandler\.(\w+)", r"class \1", code)  # nn_handler.md's nested enums
    tree = ast.parse(code)
    problems: list[str] = []
    checked: list[str] = []
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        spec = specs.get(cls.name)
        if spec is None:
            continue
        checked.append(cls.name)
        ours = spec.ours
        if isinstance(ours, type) and issubclass(ours, enum.Enum):
            documented = {
                n.targets[0].id: ast.literal_eval(n.value)
                for n in cls.body
                if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
            }
            actual = {m.name: m.value for m in ours}
            if documented != actual:
                problems.append(f"{cls.name}: members {actual} != documented {documented}")
        attributes: set[str] = set()
        for node in cls.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            name = node.name
            if name in spec.skip_methods or _is_setter(node):
                continue
            if name == "__init__":
                documented_params = _params(node.args)
                problems += signature_problems(
                    f"{cls.name}.__init__", documented_params, ours, namespace, spec.check_order
                )
                attributes = _init_attributes(node) - spec.skip_attributes
                continue
            if name.startswith("_"):
                continue
            if not hasattr(ours, name):
                problems.append(f"{cls.name}: no {name}")
            elif _is_property(node):
                prop = inspect.getattr_static(ours, name)
                if not isinstance(prop, property):
                    problems.append(f"{cls.name}.{name} is not a property")
                elif _has_setter(cls, name) and prop.fset is None:
                    problems.append(f"{cls.name}.{name} cannot be set")
            elif isinstance(inspect.getattr_static(ours, name), property):
                problems.append(f"{cls.name}.{name} is a property, documented as a method")
            else:
                documented_params = _params(node.args)
                problems += signature_problems(
                    f"{cls.name}.{name}", documented_params, getattr(ours, name), namespace
                )
        if attributes:
            if spec.make is None:
                problems.append(f"{cls.name}: no factory to check attributes {sorted(attributes)}")
            else:
                instance = spec.make()
                for attr in sorted(attributes):
                    if not hasattr(instance, attr):
                        problems.append(f"{cls.name}: instances have no attribute {attr!r}")
    return problems, checked
