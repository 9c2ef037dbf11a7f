"""The set of named metrics a handler evaluates every batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["MetricSet", "is_torchmetric"]


def is_torchmetric(fn: Any) -> bool:
    """True for a ``torchmetrics.Metric`` (imported lazily: the check costs nothing otherwise)."""
    try:
        from torchmetrics import Metric
    except ImportError:  # pragma: no cover - torchmetrics is a dependency
        return False
    return isinstance(fn, Metric)


class MetricSet:
    """Ordered ``name -> fn(outputs, targets)`` mapping, or ``name -> torchmetrics.Metric``."""

    def __init__(self) -> None:
        self._fns: dict[str, Callable[..., Any]] = {}

    def add(self, name: str, fn: Callable[..., Any]) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"A metric name must be a non-empty string, got {name!r}.")
        if name.startswith("val_"):
            raise ValueError(
                f"Metric name {name!r} must not start with 'val_': the prefix is added for "
                "validation values."
            )
        if name in ("loss", "epoch", "lr", "epoch_time") or name.startswith("lr_group_"):
            raise ValueError(f"Metric name {name!r} is reserved for the epoch logs.")
        if not callable(fn):
            raise TypeError(
                f"Metric {name!r} must be a callable fn(outputs, targets) or a "
                "torchmetrics.Metric, "
                f"got {type(fn).__name__}."
            )
        self._fns[name] = fn

    def clear(self) -> None:
        self._fns.clear()

    def items(self):
        return self._fns.items()

    def names(self) -> list[str]:
        return list(self._fns)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fns)

    def __len__(self) -> int:
        return len(self._fns)

    def __getitem__(self, name: str) -> Callable[..., Any]:
        return self._fns[name]

    def as_dict(self) -> dict[str, Callable[..., Any]]:
        return dict(self._fns)
