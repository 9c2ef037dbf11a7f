"""Import paths of classes and functions: written into checkpoints and configs, resolved safely.

A checkpoint or a config names what to rebuild by import path (``"package.module:QualName"``).
Resolving a path is where a file could make us import or call something it chooses, so it is
checked here, once, for every reader:

- the object must be of the kind the slot expects (a model slot takes an ``nn.Module``
  subclass, an optimizer slot an ``Optimizer`` subclass, ...);
- unless the caller trusts the file, nothing from the Python standard library is resolved (that
  is where process, file and code-execution functions live), a path may not walk through a
  module attribute of another module (``"torch:os.system"``), and nothing is imported that is
  neither imported already nor a safe module (``_safe_modules``): importing runs the module.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .safe_modules import import_refused, importable

__all__ = [
    "Kind",
    "Unresolvable",
    "UnsafeReference",
    "import_path",
    "config_path",
    "why_no_path",
    "lookup",
    "resolve",
]

_STDLIB = frozenset(sys.stdlib_module_names) | {"builtins", "__builtin__"}


class Unresolvable(ValueError):
    """An object that has no import path, or a stored path that does not resolve."""


class UnsafeReference(Unresolvable):
    """A stored reference that is refused unless the file is trusted."""


@dataclass(frozen=True)
class Kind:
    """What a slot accepts: a name for messages and a check on the resolved object."""

    name: str
    check: Callable[[Any], bool]

    def accepts(self, obj: Any) -> bool:
        try:
            return bool(self.check(obj))
        except Exception:  # noqa: BLE001 - a check that fails means "not of this kind"
            return False


def why_no_path(obj: Any) -> str | None:
    """Why ``obj`` cannot be named by import path, or ``None`` when it can.

    The same text is used by checkpoints and by the CLI config, so a user reads one reason.
    """
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    name = getattr(obj, "__name__", qualname) or repr(obj)
    if not module or not qualname:
        return f"{name} has no module/qualified name"
    if "<lambda>" in qualname:
        return "a lambda has no import path; define a named function at module level"
    if "<locals>" in qualname:
        return f"{name} is defined inside a function; define it at module level"
    try:
        _find(obj)
    except Unresolvable as err:
        return str(err)
    return None


def _candidates(obj: Any) -> list[str]:
    module, qualname = obj.__module__, obj.__qualname__
    name = getattr(obj, "__name__", qualname)
    # Built-in functions (torch.sigmoid) have a class-like qualname but live at module level.
    return [f"{module}:{qualname}"] + ([f"{module}:{name}"] if name and name != qualname else [])


def _same(found: Any, obj: Any) -> bool:
    # Functions re-exported through wrappers (torch's overridable functions) compare by the
    # wrapped object.
    return found is obj or getattr(found, "__wrapped__", found) is getattr(obj, "__wrapped__", obj)


def _find(obj: Any) -> str:
    paths = _candidates(obj)
    reason = ""
    for path in paths:
        try:
            found = lookup(path)
        except Unresolvable as err:
            reason = str(err)
            continue
        if _same(found, obj):
            return path
        reason = f"{path} names another object"
    name = getattr(obj, "__name__", obj.__qualname__)
    raise Unresolvable(f"{name} cannot be imported back from {paths[0]} ({reason})")


def import_path(obj: Any) -> str:
    """``"module:QualName"`` of a class or function, checked to resolve back to ``obj``.

    Raises:
        Unresolvable: with :func:`why_no_path`'s reason (lambdas, local definitions, ...).
    """
    reason = why_no_path(obj)
    if reason is not None:
        raise Unresolvable(reason)
    return _find(obj)


def config_path(obj: Any) -> str:
    """The dotted path (``"module.QualName"``) a Lightning CLI config uses for ``obj``.

    Raises:
        Unresolvable: as :func:`import_path`; also for classes defined in ``__main__``.
    """
    path = import_path(obj)
    module, _, qualname = path.partition(":")
    if module == "__main__":
        raise Unresolvable(
            f"{qualname} is defined in __main__ (a script); move it to an importable module"
        )
    return f"{module}.{qualname}"


def _top_package(name: str) -> str:
    return name.split(".", 1)[0]


def lookup(path: object, trust: bool = True) -> Any:
    """The object at ``"module:QualName"``.

    With ``trust=False`` paths into the standard library, and paths walking through another
    module's attributes, are refused before anything is imported.

    Raises:
        Unresolvable: the path is malformed or does not resolve.
        UnsafeReference: refused without trust.
    """
    if not isinstance(path, str):
        raise Unresolvable(f"{path!r} is not an import path")
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise Unresolvable(f"{path!r} is not an import path of the form 'package.module:Name'")
    if not trust and _top_package(module_name) in _STDLIB:
        raise UnsafeReference(
            f"{path!r} names the Python standard library, which a checkpoint may not choose"
        )
    if not trust and not importable(module_name):
        raise UnsafeReference(import_refused(path, module_name))
    if module_name == "__main__":
        module = sys.modules.get("__main__")
    else:
        try:
            module = importlib.import_module(module_name)
        except Exception as err:  # noqa: BLE001 - any import failure means "not resolvable"
            raise Unresolvable(f"module {module_name!r} cannot be imported: {err}") from None
    obj: Any = module
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise Unresolvable(f"{module_name!r} has no attribute {qualname!r}") from None
        if inspect.ismodule(obj) and not trust:
            raise UnsafeReference(f"{path!r} reaches into the module {obj.__name__!r}")
    if not trust and _top_package(str(getattr(obj, "__module__", "") or "")) in _STDLIB:
        raise UnsafeReference(
            f"{path!r} resolves to {getattr(obj, '__qualname__', obj)!r} of the Python standard "
            "library, which a checkpoint may not choose"
        )
    return obj


def resolve(path: object, what: str, kind: Kind, trust: bool = False) -> Any:
    """The object at ``path``, checked to be of ``kind``.

    Raises:
        Unresolvable: with a message naming ``what``, the path and why.
    """
    try:
        obj = lookup(path, trust)
    except UnsafeReference as err:
        raise UnsafeReference(f"the {what} {path!r} is refused: {err}") from None
    except Unresolvable as err:
        raise Unresolvable(f"the {what} {path!r} cannot be resolved: {err}") from None
    if not kind.accepts(obj):
        raise Unresolvable(f"the {what} {path!r} resolves to {obj!r}, which is not {kind.name}")
    return obj
