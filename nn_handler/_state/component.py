"""A component of a setup: an importable class plus the keyword arguments it is built with."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from .placeholders import OWN_MODULE

__all__ = ["Component", "same_value"]


def same_value(a: Any, b: Any) -> bool:
    """Equality that also compares tensors (by value) and containers of them."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and bool(torch.equal(a.detach().cpu(), b.detach().cpu()))
        )
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - incomparable values are simply different
        return a is b


@dataclass(frozen=True, eq=False)
class Component:
    """``target(*args, **kwargs)`` described as data: what a setter was given.

    Attributes:
        target: the class (model, optimizer, scheduler, SDE, sampler) to build.
        kwargs: its keyword arguments; :data:`OWN_MODULE` stands for
            the handler's model.
        assigned: built by the user and assigned as an object (``handler.sde = obj``): the
            kwargs are what the object reports (``hparams``), possibly incomplete.
    """

    target: Any
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    assigned: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "kwargs", dict(self.kwargs))

    @property
    def name(self) -> str:
        return getattr(self.target, "__qualname__", repr(self.target))

    def build(self, *args: Any, own_module: torch.nn.Module | None = None) -> Any:
        """``target(*args, **kwargs)``, the placeholder replaced by ``own_module``."""
        kwargs = {k: own_module if v is OWN_MODULE else v for k, v in self.kwargs.items()}
        return self.target(*args, **kwargs)

    def with_own_module(self, module: torch.nn.Module | None) -> Component:
        """This component with kwargs that *are* ``module`` replaced by the placeholder."""
        if module is None or not any(v is module for v in self.kwargs.values()):
            return self
        kwargs = {k: OWN_MODULE if v is module else v for k, v in self.kwargs.items()}
        return Component(self.target, kwargs, self.assigned)

    def effective_kwargs(self) -> dict[str, Any]:
        """The kwargs with the target's defaults filled in: what ``build`` really passes."""
        try:
            params = inspect.signature(self.target).parameters.values()
        except (TypeError, ValueError):
            return dict(self.kwargs)
        defaults = {p.name: p.default for p in params if p.default is not p.empty}
        return {**defaults, **self.kwargs}

    def __eq__(self, other: object) -> bool:
        """Same target built with the same arguments (defaults spelled out or not)."""
        if not isinstance(other, Component):
            return NotImplemented
        return self.target is other.target and same_value(
            self.effective_kwargs(), other.effective_kwargs()
        )

    def __hash__(self) -> int:
        return hash(id(self.target))

    def __repr__(self) -> str:
        return f"Component({self.name}, {self.kwargs})"
