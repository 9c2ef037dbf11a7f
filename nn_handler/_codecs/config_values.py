"""Values as Lightning CLI config entries: plain YAML data, dotted paths, class_path/init_args.

Init args of objects (datasets, losses, metrics, callbacks) are read back from the attributes of
the same name, the usual convention of configurable classes; parameters without such an
attribute keep their defaults. What cannot be written is reported by config key, never dropped.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any

import torch
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler
from torch.utils.data._utils.collate import default_collate

from .._state.component import Component, same_value
from .._state.placeholders import OWN_MODULE
from .paths import Unresolvable, config_path

__all__ = [
    "ConfigExportError",
    "Report",
    "callable_spec",
    "class_spec",
    "component_spec",
    "factory_parts",
    "kwargs_values",
    "loader_kwargs",
    "value",
]

MISSING = object()


class ConfigExportError(ValueError):
    """Parts of a handler cannot be written as a CLI config; ``problems`` lists them by key."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        lines = "\n  - ".join(self.problems)
        super().__init__(
            "The handler cannot be fully written as a Lightning CLI config:\n  - "
            f"{lines}\nFix these (define functions and classes at module level in an importable "
            "module; give datasets plain init arguments stored as attributes of the same name), or "
            "call export_config(path, strict=False) to write the rest with null placeholders."
        )


class Report:
    """Collects what cannot be expressed, keyed by its place in the config."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")


def _dotted(obj: Any, key: str, report: Report) -> str | None:
    try:
        return config_path(obj)
    except Unresolvable as err:
        report.add(key, str(err))
        return None


def _plain(v: Any) -> Any:
    """``v`` as YAML-safe plain data, or ``MISSING`` when it is not plain data."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, (list, tuple)):
        items = [_plain(x) for x in v]
        return MISSING if any(x is MISSING for x in items) else items
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            return MISSING
        entries = {k: _plain(x) for k, x in v.items()}
        return MISSING if any(x is MISSING for x in entries.values()) else entries
    if isinstance(v, torch.Tensor) and v.numel() == 1 and not v.requires_grad:
        return v.item()
    return MISSING


def value(v: Any, key: str, report: Report) -> Any:
    """A kwarg value: plain data, or a function/class written by dotted path."""
    plain = _plain(v)
    if plain is not MISSING:
        return plain
    if v is OWN_MODULE:
        report.add(key, "the handler's own model cannot be passed to a component in a config")
        return None
    if inspect.isfunction(v) or inspect.isclass(v) or inspect.isbuiltin(v):
        return _dotted(v, key, report)
    report.add(key, f"a {type(v).__name__} value cannot be written in YAML")
    return None


def kwargs_values(kwargs: dict[str, Any], key: str, report: Report) -> dict[str, Any]:
    return {name: value(v, f"{key}.{name}", report) for name, v in kwargs.items()}


def _init_args(obj: Any, key: str, report: Report, verify: bool) -> dict[str, Any] | None:
    """Init args of ``obj`` read back from attributes named like its ``__init__`` parameters.

    ``None`` (and a reported problem) when some argument cannot be read back at all.
    """
    cls = type(obj)
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return {}
    args: dict[str, Any] = {}
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            continue
        has = hasattr(obj, p.name)
        if p.kind is p.VAR_POSITIONAL or (not has and p.default is p.empty):
            report.add(
                key,
                f"{cls.__name__}'s argument {p.name!r} cannot be read back from the object "
                "(store each __init__ argument as an attribute of the same name)",
            )
            return None
        if not has:
            continue
        current = getattr(obj, p.name)
        if p.default is not p.empty and same_value(current, p.default):
            continue
        if isinstance(current, torch.Tensor) and current.numel() != 1:
            report.add(f"{key}.init_args.{p.name}", "a tensor cannot be written in YAML")
            continue
        args[p.name] = value(current, f"{key}.init_args.{p.name}", report)
    if verify:
        _verify_round_trip(obj, args, key, report)
    return args


def _verify_round_trip(obj: Any, args: dict[str, Any], key: str, report: Report) -> None:
    """Rebuild ``obj`` from ``args`` and compare its attributes: catches transformed arguments."""
    try:
        rebuilt = type(obj)(**args)
    except Exception as err:  # noqa: BLE001 - any failure means the args do not rebuild it
        report.add(key, f"{type(obj).__name__}(**{args}) fails: {err}")
        return
    for name in args:
        if not same_value(getattr(rebuilt, name, MISSING), getattr(obj, name, MISSING)):
            report.add(
                f"{key}.init_args.{name}",
                f"{type(obj).__name__} transforms this argument when storing it; it cannot be "
                "read back",
            )


def class_spec(obj: Any, key: str, report: Report, verify: bool = False) -> dict[str, Any] | None:
    """An object as ``{"class_path", "init_args"}`` read back from its attributes."""
    path = _dotted(type(obj), key, report)
    if path is None:
        return None
    spec: dict[str, Any] = {"class_path": path}
    args = _init_args(obj, key, report, verify)
    if args is None:
        return None
    if args:
        spec["init_args"] = args
    return spec


def callable_spec(fn: Any, key: str, report: Report) -> Any:
    """A function by dotted path; a callable object (loss module, torchmetric) by class spec."""
    if inspect.isfunction(fn) or inspect.isbuiltin(fn) or inspect.isclass(fn):
        return value(fn, key, report)
    if isinstance(fn, functools.partial):
        report.add(key, "a functools.partial cannot be written; use a named function")
        return None
    if callable(fn):
        return class_spec(fn, key, report, verify=True)
    report.add(key, f"{fn!r} cannot be written by import path")
    return None


def component_spec(component: Component | None, key: str, report: Report) -> Any:
    """A component as ``{"class_path", "init_args"}`` (``None`` for no component)."""
    if component is None:
        return None
    path = _dotted(component.target, key, report)
    if path is None:
        return None
    spec: dict[str, Any] = {"class_path": path}
    if component.kwargs:
        spec["init_args"] = kwargs_values(dict(component.kwargs), f"{key}.init_args", report)
    return spec


def factory_parts(factory: Any, key: str, base: type) -> tuple[type, dict[str, Any]]:
    """``(class, kwargs)`` of a class or a ``functools.partial`` over one (what the CLI gives)."""
    if inspect.isclass(factory):
        cls, kwargs = factory, {}
    elif isinstance(factory, functools.partial):
        classes = [a for a in (factory.func, *factory.args) if inspect.isclass(a)]
        if not classes:
            raise TypeError(f"{key}: {factory!r} does not name a class.")
        cls, kwargs = classes[-1], dict(factory.keywords)
    else:
        raise TypeError(
            f"{key} must be a class or a class with init args (class_path/init_args), got "
            f"{factory!r}; a lambda or a function cannot be saved in a checkpoint by import path."
        )
    if not issubclass(cls, base):
        raise TypeError(f"{key}: {cls.__qualname__} is not a subclass of {base.__qualname__}.")
    return cls, kwargs


def loader_kwargs(kwargs: dict[str, Any], loader: Any, key: str, report: Report) -> dict:
    """DataLoader keyword arguments; read back from ``loader`` when none were given."""
    if kwargs or loader is None:
        return kwargs_values(kwargs, key, report)
    out: dict[str, Any] = {}
    if not isinstance(loader, DataLoader):
        report.add(key, f"a {type(loader).__name__} loader cannot be written")
        return out
    if loader.batch_size != 1:
        out["batch_size"] = loader.batch_size
    if isinstance(loader.sampler, RandomSampler):
        out["shuffle"] = True
    elif not isinstance(loader.sampler, SequentialSampler):
        report.add(key, f"a custom sampler ({type(loader.sampler).__name__}) cannot be written")
    for name, default in (("drop_last", False), ("num_workers", 0), ("pin_memory", False)):
        if getattr(loader, name) != default:
            out[name] = getattr(loader, name)
    if loader.collate_fn is not default_collate:
        out["collate_fn"] = value(loader.collate_fn, f"{key}.collate_fn", report)
    return out
