"""Named metrics: validation of a metric given to ``add_metric``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:
    from torchmetrics import Metric

__all__ = ["check_metric", "is_torchmetric"]

_RESERVED = ("loss", "epoch", "lr", "epoch_time")


def is_torchmetric(fn: Any) -> TypeGuard[Metric]:
    """True for a ``torchmetrics.Metric`` (imported lazily: the check costs nothing otherwise)."""
    try:
        from torchmetrics import Metric
    except ImportError:  # pragma: no cover - torchmetrics is a dependency
        return False
    return isinstance(fn, Metric)


def check_metric(name: Any, fn: Any) -> None:
    """Raise for a name the epoch logs cannot hold or a value that is not a metric."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"A metric name must be a non-empty string, got {name!r}.")
    if name.startswith("val_"):
        raise ValueError(
            f"Metric name {name!r} must not start with 'val_': the prefix is added for "
            "validation values."
        )
    if name in _RESERVED or name.startswith("lr_group_"):
        raise ValueError(f"Metric name {name!r} is reserved for the epoch logs.")
    if not callable(fn):
        raise TypeError(
            f"Metric {name!r} must be a callable fn(outputs, targets) or a torchmetrics.Metric, "
            f"got {type(fn).__name__}."
        )
