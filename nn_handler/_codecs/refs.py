"""Values encoded as plain data that ``torch.load(weights_only=True)`` reads, and decoded safely.

A checkpoint never pickles code. A class or function is stored as ``"package.module:QualName"``;
an ``nn.Module`` instance (a loss such as ``nn.CrossEntropyLoss(weight=w)``, a torchmetrics
metric) as its class path, the constructor arguments it keeps as same-named attributes, and its
``state_dict``. Values that cannot be stored this way (a lambda, a local class) become a
"missing" marker and are reported at save time.

Decoding is where a file could choose what runs, so it follows one rule (as Keras' ``safe_mode``):
a file may *name* what to rebuild, of a checked kind, but nothing the file alone chooses is called
with arguments the file alone chooses. Without ``trust``:

- keyword arguments and states hold plain data, tensors, and ``nn.Module`` classes or instances
  (rebuilt from plain data); a function or a ``functools.partial`` inside them is refused;
- a top-level function slot (a loss, a metric) may name a function outside the standard library;
- the standard library is never resolved (see ``_paths``).
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from .._state.placeholders import OWN_MODULE
from .paths import Kind, Unresolvable, UnsafeReference, import_path, resolve

__all__ = [
    "FUNCTION",
    "MISSING",
    "MODULE_CLASS",
    "MODULE_SLACK_BYTES",
    "Unresolvable",
    "UnsafeReference",
    "constructor_kwargs",
    "decode",
    "decode_callable",
    "decode_kwargs",
    "decode_plain",
    "encode",
    "is_marker",
    "meta_bytes",
    "nbytes",
    "note_main",
]

# Marker key of an encoded non-plain value; the value says which kind.
MARK = "__nn_handler__"
MISSING = "missing"
_PLAIN = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device, torch.Size)

MODULE_CLASS = Kind(
    "an nn.Module subclass", lambda o: inspect.isclass(o) and issubclass(o, nn.Module)
)
FUNCTION = Kind(
    "a function",
    lambda o: callable(o) and not inspect.isclass(o) and not inspect.ismodule(o),
)
_ANY = Kind("an importable object", lambda o: not inspect.ismodule(o))


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
    if value is OWN_MODULE:
        return {MARK: "own_module"}
    if isinstance(value, enum.Enum):
        return encode(value.value, problems, where)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach()
    if type(value).__module__ == "numpy":
        return value.tolist() if hasattr(value, "tolist") else value.item()
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


def note_main(obj: Any, problems: list[str], where: str) -> None:
    if getattr(obj, "__module__", None) == "__main__":
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


_TRUST_HINT = (
    "; pass the object when loading, or NNHandler.load(..., trust_checkpoint=True) if you "
    "trust this file"
)


def decode(value: Any, where: str, trust: bool = False) -> Any:
    """Inverse of :func:`encode` for keyword arguments and states (plain data).

    Without ``trust`` only plain data, tensors and ``nn.Module`` classes/instances come back; a
    function or ``partial`` chosen by the file raises :class:`UnsafeReference`.

    Raises:
        Unresolvable: a missing marker, a path that does not resolve, or a refused reference.
    """
    if isinstance(value, dict):
        kind = value.get(MARK)
        if kind is None:
            out = OrderedDict() if isinstance(value, OrderedDict) else {}
            for k, v in value.items():
                out[k] = decode(v, f"{where}[{k!r}]", trust)
            return out
        return _decode_marker(value, kind, where, trust, top_level=False)
    if isinstance(value, list):
        return [decode(v, f"{where}[{i}]", trust) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(decode(v, f"{where}[{i}]", trust) for i, v in enumerate(value))
    return value


def decode_kwargs(
    value: Any, where: str, trust: bool = False, plain: bool = False
) -> dict[str, Any]:
    """Decoded keyword arguments: a dict with string keys (anything else is refused).

    ``plain``: only plain data (:func:`decode_plain`), no stored class or module.
    """
    value = value if value is not None else {}
    if not isinstance(value, dict) or is_marker(value):
        raise Unresolvable(f"{where} must be a dict of keyword arguments, got {_what(value)}")
    decoded = decode_plain(value, where) if plain else decode(value, where, trust)
    if not isinstance(decoded, dict) or not all(isinstance(k, str) for k in decoded):
        raise Unresolvable(
            f"{where} must be a dict of keyword arguments, got {type(decoded).__name__}"
        )
    return dict(decoded)


def _what(value: Any) -> str:
    if is_marker(value):
        return f"a stored {value.get(MARK)!r} ({value.get('path', '')})"
    return f"a {type(value).__name__}"


def decode_plain(value: Any, where: str) -> Any:
    """``value`` when it is plain data (numbers, strings, tensors, lists, tuples, sets and dicts
    of them), checked before anything is built: a slot that takes a setting (``seed``,
    ``ddp_kwargs``, a module's constructor arguments) never rebuilds a class or a module.

    Raises:
        Unresolvable: a marker (a stored class, function, module or partial) anywhere inside.
    """
    if is_marker(value):
        raise Unresolvable(
            f"{where} holds {_what(value)}, where only plain data (numbers, strings, tensors, "
            "lists and dicts of them) is read"
        )
    if isinstance(value, dict):
        out = OrderedDict() if isinstance(value, OrderedDict) else {}
        for k, v in value.items():
            out[k] = decode_plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [decode_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else type(value)(items)
    return value


# A module a file describes may hold this much more than the tensors the file stores for it
# (metric states, default buffers): beyond it, the file would choose how much memory is taken.
MODULE_SLACK_BYTES = 16 * 2**20


def _held_tensors(module: nn.Module) -> list[torch.Tensor]:
    """Every tensor a module holds: parameters, buffers and tensor attributes (metric states)."""
    found: dict[int, torch.Tensor] = {}
    for sub in module.modules():
        for item in vars(sub).values():
            values = item.values() if isinstance(item, dict) else (item,)
            for v in values:
                if isinstance(v, torch.Tensor):
                    found[id(v)] = v
    return list(found.values())


def nbytes(tensors: Any) -> int:
    """Bytes held by the tensors among ``tensors``."""
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def meta_bytes(
    cls: type, kwargs: dict[str, Any], fallback: bool = True, state_only: bool = False
) -> int:
    """Bytes of the tensors ``cls(**kwargs)`` would hold, built on the ``meta`` device (shapes
    only, no memory): every tensor it holds, or with ``state_only`` those of its
    ``state_dict`` (what a file's weights must cover). ``fallback``: ``cls()`` when the
    arguments no longer fit (as decoding does). Raises what the constructor raises."""
    with torch.device("meta"):
        try:
            probe = cls(**kwargs)
        except TypeError:
            if not fallback:
                raise
            probe = cls()
    held = probe.state_dict().values() if state_only else _held_tensors(probe)
    return nbytes(t for t in held if isinstance(t, torch.Tensor) and t.is_meta)


def _check_size(cls: type, kwargs: dict[str, Any], state: dict[str, Any], where: str) -> None:
    """Refuse a module whose tensors would take more memory than the file stores for it.

    The module is first built on the ``meta`` device, so the file's arguments
    (``Linear(23000, 23000)``) cannot make loading allocate before this check.
    """
    try:
        wanted = meta_bytes(cls, kwargs)
    except Exception as err:  # noqa: BLE001 - a module that cannot be sized is not built
        raise UnsafeReference(
            f"{where}: {cls.__qualname__} cannot be sized before it is built "
            f"({type(err).__name__}: {err})" + _TRUST_HINT
        ) from None
    stored = nbytes(state.values()) + nbytes(kwargs.values())
    if wanted > stored + MODULE_SLACK_BYTES:
        raise UnsafeReference(
            f"{where}: {cls.__qualname__} with the stored arguments takes {wanted} bytes, but the "
            f"file stores {stored} bytes for it; a file does not choose how much memory loading "
            "takes" + _TRUST_HINT
        )


def decode_callable(value: Any, where: str, trust: bool = False) -> Any:
    """A top-level function slot (loss, metric): a function or an ``nn.Module`` instance.

    Without ``trust`` a named function must lie outside the standard library; a ``partial``
    (a function with arguments the file chose) is refused.
    """
    kind = value.get(MARK) if isinstance(value, dict) else None
    if kind is None and trust and callable(value):
        return value  # a legacy pickle the user opted in to: already an object
    if kind is None:
        raise Unresolvable(f"{where} is not a stored function or module ({type(value).__name__})")
    return _decode_marker(value, kind, where, trust, top_level=True)


def _decode_marker(value: dict, kind: str, where: str, trust: bool, top_level: bool) -> Any:
    if kind == MISSING:
        raise Unresolvable(
            f"{where} ({value.get('what')}) was not stored in the file: {value.get('reason')}"
        )
    if kind == "own_module":
        return OWN_MODULE
    if kind == "ref":
        if trust:
            return resolve(value.get("path"), where, _ANY, trust=True)
        slot = FUNCTION if top_level else MODULE_CLASS
        try:
            return resolve(value.get("path"), where, slot, trust=False)
        except UnsafeReference as err:
            raise UnsafeReference(str(err) + _TRUST_HINT) from None
        except Unresolvable as err:
            if not top_level and "which is not" in str(err):
                raise UnsafeReference(
                    f"{where} names {value.get('path')!r}: a function or class other than an "
                    "nn.Module, inside arguments, is only rebuilt from a trusted file" + _TRUST_HINT
                ) from None
            raise
    if kind == "partial":
        if not trust:
            raise UnsafeReference(
                f"{where} is a functools.partial stored in the file (a function called with "
                "arguments the file chose)" + _TRUST_HINT
            )
        func = _decode_marker(value["func"], value["func"].get(MARK), f"{where}.func", True, True)
        args = decode(value.get("args", []), f"{where}.args", True)
        return functools.partial(func, *args, **decode(value.get("kwargs", {}), where, True))
    if kind == "module":
        cls = resolve(value.get("path"), where, MODULE_CLASS, trust=trust)
        # Constructor arguments are plain data: a marker inside them would be a second object
        # the file chooses to build (and size) before this one is checked.
        kwargs = decode_kwargs(value.get("kwargs"), f"{where}.kwargs", trust, plain=not trust)
        state = value.get("state") or {}
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise Unresolvable(f"{where}.state must be a dict of tensors (a state_dict)")
        if not trust:
            _check_size(cls, kwargs, state, where)
        try:
            obj = cls(**kwargs)
        except TypeError:
            obj = cls()
        if state:
            obj.load_state_dict(state, strict=False)
        return obj
    raise Unresolvable(f"{where} has an unknown encoding {kind!r}")
