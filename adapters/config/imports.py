"""Before the Lightning CLI parses a config: every import path it names must import.

jsonargparse reports a class it cannot import deep inside "Does not validate against any of the
Union subtypes"; checking first lets the ``nn-handler`` command say which name in which key
failed, and why, before anything else.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import yaml

__all__ = [
    "config_files",
    "config_import_problems",
    "cwd_on_path",
    "exit_on_import_problems",
    "import_object",
    "import_problem",
]

# HandlerCLIModule arguments that may be given as a bare import path instead of class_path.
_PATH_ARGUMENTS = frozenset({"model", "loss", "optimizer", "scheduler", "sde", "sampler"})


def cwd_on_path() -> None:
    """Put the current directory first on ``sys.path``, as ``python -m`` does."""
    cwd = os.getcwd()
    if sys.path[:1] not in ([cwd], [""]):
        sys.path.insert(0, cwd)


def _find(path: str) -> tuple[Any, str | None]:
    """``(object, None)`` for the dotted ``path`` ("package.module.Name"), or ``(None, why)``."""
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:i])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            missing = err.name or ""
            if module_name == missing or module_name.startswith(missing + "."):
                continue  # no such module: a shorter prefix may be one, the rest attributes
            return None, f"importing {module_name} failed: {err}"
        except Exception as err:  # noqa: BLE001 - any failure of the user's module is the answer
            return None, f"importing {module_name} failed: {type(err).__name__}: {err}"
        for depth, attribute in enumerate(parts[i:], start=i):
            try:
                obj = getattr(obj, attribute)
            except AttributeError:
                return None, f"{'.'.join(parts[:depth])!r} has no attribute {attribute!r}"
        return obj, None
    return None, f"No module named {parts[0]!r}"


def import_problem(path: str) -> str | None:
    """Why the dotted ``path`` ("package.module.Name") cannot be imported, or ``None``."""
    return _find(path)[1]


def import_object(path: str) -> Any:
    """What the dotted ``path`` names, or ``None`` when it cannot be imported."""
    return _find(path)[0]


def _import_paths(node: Any, key: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """``(dotted key, import path)`` for every class_path and path-valued handler argument."""
    if isinstance(node, dict):
        for name, value in node.items():
            here = (*key, str(name))
            if isinstance(value, str) and "." in value and _names_import_path(here):
                yield ".".join(here), value
            else:
                yield from _import_paths(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _import_paths(value, (*key, str(i)))


def _names_import_path(key: tuple[str, ...]) -> bool:
    if key[-1] == "class_path":
        return True
    if len(key) >= 2 and key[-2] == "model" and key[-1] in _PATH_ARGUMENTS:
        return True
    return len(key) >= 3 and key[-3] == "model" and key[-2] == "metrics"


def config_files(args: Sequence[str]) -> list[str]:
    """The existing ``--config`` files named in ``args``."""
    files = []
    for i, arg in enumerate(args):
        if arg in ("-c", "--config") and i + 1 < len(args):
            files.append(args[i + 1])
        elif arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
    return [f for f in files if os.path.isfile(f)]


def config_import_problems(args: Sequence[str]) -> list[str]:
    """One line per import path in the ``--config`` files of ``args`` that does not import."""
    problems = []
    for file in config_files(args):
        try:
            with open(file, encoding="utf-8") as handle:
                config = yaml.safe_load(handle)
        except (OSError, yaml.YAMLError):
            continue  # jsonargparse reports unreadable files itself
        for key, path in _import_paths(config):
            problem = import_problem(path)
            if problem is not None:
                problems.append(f"{key}: {path!r} cannot be imported ({problem})")
    return problems


def exit_on_import_problems(args: Sequence[str]) -> None:
    """Print what cannot be imported and exit with status 2 (a usage error), if anything."""
    problems = config_import_problems(args)
    if not problems:
        return
    cwd = os.getcwd()
    searched = (
        f"the current directory ({cwd}) and PYTHONPATH"
        if cwd in sys.path or "" in sys.path
        else "PYTHONPATH and the installed packages"
    )
    lines = ["error: the config names what cannot be imported:"]
    lines += [f"  {p}" for p in problems]
    lines.append(f"Modules are looked up in {searched}.")
    print("\n".join(lines), file=sys.stderr)
    raise SystemExit(2)
