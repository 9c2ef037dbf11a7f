"""Classes and functions as import paths, and values encoded so ``weights_only`` loading reads them.

A checkpoint never pickles code. A class or function is stored as ``"package.module:QualName"``;
an ``nn.Module`` instance (a loss such as ``nn.CrossEntropyLoss(weight=w)``, a torchmetrics
metric) as its class path, the constructor arguments it keeps as same-named attributes, and its
``state_dict``. Values that cannot be stored this way (a lambda, a local class) become a
"missing" marker and are reported at save time.
"""

from __future__ import annotations

import enum
import functools
import importlib
import inspect
import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = [
    "MISSING",
    "Unresolvable",
    "constructor_kwargs",
    "decode",
    "encode",
    "import_path",
    "resolve",
]

# Marker key of an encoded non-plain value; the value says which kind.
MARK = "__nn_handler__"
MISSING = "missing"
_PLAIN = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device, torch.Size)


class Unresolvable(ValueError):
    """An object that has no import path, or a stored path that does not resolve."""


def import_path(obj: Any) -> str:
    """``"module:QualName"`` of a class or function, checked to resolve back to ``obj``.

    Raises:
        Unresolvable: for lambdas, local definitions and objects not reachable by import.
    """
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    name = getattr(obj, "__name__", qualname)
    if not module or not qualname:
        raise Unresolvable(f"{obj!r} has no module/qualified name")
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise Unresolvable(f"{name} is a lambda or is defined inside a function")
    # Built-in functions (torch.sigmoid) have a class-like qualname but live at module level.
    paths = [f"{module}:{qualname}"] + ([f"{module}:{name}"] if name and name != qualname else [])
    reason = ""
    for path in paths:
        try:
            found = _lookup(path)
        except Unresolvable as err:
            reason = str(err)
            continue
        if found is obj or _same_function(found, obj):
            return path
        reason = f"{path} names another object"
    raise Unresolvable(f"{name} cannot be imported back from {paths[0]} ({reason})")


def _same_function(a: Any, b: Any) -> bool:
    # Functions re-exported through wrappers (e.g. torch's overridable functions) compare equal
    # by their wrapped code object.
    return getattr(a, "__wrapped__", a) is getattr(b, "__wrapped__", b)


def _lookup(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise Unresolvable(f"{path!r} is not an import path of the form 'package.module:Name'")
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
    return obj


def resolve(path: str, what: str, check: Callable[[Any], bool] | None = None) -> Any:
    """The object at import path ``path``; ``check`` guards what the file may name.

    Raises:
        Unresolvable: with a message naming ``what`` and the path.
    """
    try:
        obj = _lookup(path)
    except Unresolvable as err:
        raise Unresolvable(f"the {what} {path!r} cannot be resolved: {err}") from None
    if check is not None and not check(obj):
        raise Unresolvable(f"the {what} {path!r} resolves to {obj!r}, which is not a valid {what}")
    return obj


def is_main(obj: Any) -> bool:
    return getattr(obj, "__module__", None) == "__main__"


def constructor_kwargs(obj: Any) -> dict[str, Any]:
    """Constructor arguments ``obj`` keeps as same-named plain attributes (or tensors)."""
    try:
        params = inspect.signature(type(obj).__init__).parameters.values()
    except (TypeError, ValueError):
        return {}
    out: dict[str, Any] = {}
    for p in params:
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if not hasattr(obj, p.name):
            continue
        value = getattr(obj, p.name)
        if isinstance(value, torch.Tensor) or _is_plain_tree(value):
            out[p.name] = value
    return out


def _is_plain_tree(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain_tree(v) or isinstance(v, torch.Tensor) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and _is_plain_tree(v) for k, v in value.items())
    return False


def encode(value: Any, problems: list[str], where: str) -> Any:
    """``value`` as plain data that ``torch.load(weights_only=True)`` reads.

    Objects that cannot be encoded become a ``missing`` marker; a description is appended to
    ``problems`` (``where`` names the place, e.g. ``"loss_fn"``).
    """
    if isinstance(value, enum.Enum):
        return encode(value.value, problems, where)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach()
    if type(value).__module__ == "numpy":
        return _numpy_value(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [encode(v, problems, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, list):
            return items
        if isinstance(value, (set, frozenset)):
            return set(items) if all(_hashable(i) for i in items) else items
        return tuple(items)
    if isinstance(value, dict):
        out = OrderedDict() if isinstance(value, OrderedDict) else {}
        for k, v in value.items():
            key = k if isinstance(k, (str, int, float, bool, type(None))) else str(k)
            out[key] = encode(v, problems, f"{where}[{k!r}]")
        return out
    if isinstance(value, functools.partial):
        return {
            MARK: "partial",
            "func": encode(value.func, problems, f"{where}.func"),
            "args": encode(list(value.args), problems, f"{where}.args"),
            "kwargs": encode(dict(value.keywords), problems, f"{where}.kwargs"),
        }
    if isinstance(value, nn.Module):
        try:
            path = import_path(type(value))
        except Unresolvable as err:
            return _missing(value, problems, where, err)
        note_main(type(value), problems, where)
        return {
            MARK: "module",
            "path": path,
            "kwargs": encode(constructor_kwargs(value), problems, f"{where}.kwargs"),
            "state": {k: v.detach() for k, v in value.state_dict().items()},
        }
    if inspect.isclass(value) or inspect.isroutine(value):
        try:
            path = import_path(value)
        except Unresolvable as err:
            return _missing(value, problems, where, err)
        note_main(value, problems, where)
        return {MARK: "ref", "path": path}
    return _missing(value, problems, where, Unresolvable(f"{type(value).__name__} objects"))


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def _numpy_value(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return value.item()


def note_main(obj: Any, problems: list[str], where: str) -> None:
    if is_main(obj):
        problems.append(
            f"{where}: {obj.__qualname__} is defined in the running script, stored as "
            f"'__main__:{obj.__qualname__}' (loads only from that same script)"
        )


def _missing(value: Any, problems: list[str], where: str, err: Exception) -> dict[str, Any]:
    text = getattr(value, "__qualname__", None) or type(value).__name__
    problems.append(f"{where}: {text} cannot be stored by import path ({err})")
    return {MARK: MISSING, "what": str(text), "reason": str(err)}


def is_marker(value: Any, kind: str | None = None) -> bool:
    return isinstance(value, dict) and MARK in value and (kind is None or value[MARK] == kind)


def decode(value: Any, where: str) -> Any:
    """Inverse of :func:`encode`; classes and functions are imported back.

    ``nn.Module`` markers are only instantiated for ``nn.Module`` subclasses, so a file cannot
    make load call an arbitrary constructor.

    Raises:
        Unresolvable: for a missing marker or a path that does not resolve.
    """
    if isinstance(value, dict):
        kind = value.get(MARK)
        if kind is None:
            out = OrderedDict() if isinstance(value, OrderedDict) else {}
            for k, v in value.items():
                out[k] = decode(v, f"{where}[{k!r}]")
            return out
        if kind == MISSING:
            raise Unresolvable(
                f"{where} ({value.get('what')}) was not stored in the file: {value.get('reason')}"
            )
        if kind == "ref":
            return resolve(value["path"], where, _not_a_module)
        if kind == "partial":
            func = decode(value["func"], f"{where}.func")
            args = decode(value["args"], f"{where}.args")
            return functools.partial(func, *args, **decode(value["kwargs"], where))
        if kind == "module":
            cls = resolve(value["path"], where, _is_module_class)
            kwargs = decode(value["kwargs"], f"{where}.kwargs")
            try:
                obj = cls(**kwargs)
            except TypeError:
                obj = cls()
            if value.get("state"):
                obj.load_state_dict(value["state"], strict=False)
            return obj
        raise Unresolvable(f"{where} has an unknown encoding {kind!r}")
    if isinstance(value, list):
        return [decode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(decode(v, f"{where}[{i}]") for i, v in enumerate(value))
    return value


def _is_module_class(obj: Any) -> bool:
    return inspect.isclass(obj) and issubclass(obj, nn.Module)


def _not_a_module(obj: Any) -> bool:
    # A module object (``os``) is never a valid stored reference.
    return not inspect.ismodule(obj)
