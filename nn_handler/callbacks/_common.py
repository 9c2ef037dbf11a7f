"""Helpers shared by the built-in callbacks: monitored values, rank checks, atomic writes."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from .._env.atomic import atomic_save

__all__ = [
    "BestValue",
    "Monitor",
    "MonitoredValue",
    "is_rank_zero",
    "atomic_torch_save",
    "bare_module",
    "positive_int",
]


def positive_int(owner: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` if it is an int >= ``minimum``, else a ``ValueError`` naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive" if minimum == 1 else f"an int >= {minimum}, i.e. a"
        raise ValueError(f"{owner}: {name} must be {kind} int, got {value!r}.")
    return value


def is_rank_zero(handler: Any) -> bool:
    """True on the process that writes files and prints (rank 0, or the only process).

    The rank is the handler's (``handler.runtime.dist``); a callback not attached to a handler
    asks Lightning, which knows it inside a fit.
    """
    if handler is not None:
        return int(handler.runtime.dist.rank) == 0
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0)) == 0


def bare_module(handler: Any) -> torch.nn.Module:
    """The handler's unwrapped ``nn.Module`` (never a DDP or compiled wrapper)."""
    if handler is None:
        raise RuntimeError(
            "This callback is not bound to a handler: add it with handler.add_callback(cb) "
            "(or call cb.set_handler(handler))."
        )
    return handler.module


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` through the checkpoint writer: atomic, so a crash mid-write leaves the
    previous file intact, never a truncated one (see ``nn_handler.checkpoint.atomic_save``)."""
    atomic_save(obj, path)


class BestValue(float):
    """A best-so-far value: a ``float`` that also answers ``.item()``, as the original's
    0-dim tensor did (``cb.best.item()`` in user subclasses keeps working)."""

    def item(self) -> float:
        return float(self)


def as_float(value: Any) -> float:
    """A plain float from a number or a one-element tensor."""
    return float(value.item() if isinstance(value, torch.Tensor) else value)


class Monitor:
    """Tracks the best value of one ``logs`` key in ``"min"`` or ``"max"`` mode.

    Args:
        owner: the callback's class name, used in messages.
        key: the monitored ``logs`` key (e.g. ``"val_loss"``).
        mode: ``"min"`` or ``"max"``.
        min_delta: how much better than the best a value must be to count as an improvement.
        baseline: the value to beat first (the best before any epoch); ``None`` for none.
    """

    def __init__(
        self,
        owner: str,
        key: str,
        mode: str,
        min_delta: float = 0.0,
        baseline: float | None = None,
    ):
        if not isinstance(key, str) or not key:
            raise ValueError(f"{owner}: monitor must be a logs key like 'val_loss', got {key!r}.")
        self.owner = owner
        self.key = key
        self.min_delta = abs(float(min_delta))
        self.baseline = None if baseline is None else as_float(baseline)
        self.set_mode(mode)
        self._warned_missing = False

    def set_mode(self, mode: str) -> None:
        """Switch to ``"min"`` or ``"max"``; the best value starts over."""
        if mode not in ("min", "max"):
            raise ValueError(f"{self.owner}: mode must be 'min' or 'max', got {mode!r}.")
        self.mode = mode
        self.reset()

    @property
    def op(self) -> Any:
        """``torch.lt`` in ``"min"`` mode, ``torch.gt`` in ``"max"`` mode (the original's
        ``monitor_op``)."""
        return torch.lt if self.mode == "min" else torch.gt

    def reset(self) -> None:
        if self.baseline is not None:
            self.best = self.baseline
        else:
            self.best = math.inf if self.mode == "min" else -math.inf

    def current(self, logs: dict[str, Any] | None) -> float | None:
        """The monitored value of this epoch, or None when there is none to judge.

        A key absent from ``logs`` warns once (not every epoch). A NaN ``val_*`` value means
        validation did not run this epoch and is skipped silently; any other NaN is returned
        (and never counts as an improvement).
        """
        logs = logs or {}
        if self.key not in logs:
            if not self._warned_missing:
                self._warned_missing = True
                known = ", ".join(sorted(k for k in logs if isinstance(logs[k], (int, float))))
                warnings.warn(
                    f"{self.owner}: monitored key {self.key!r} is not in the epoch logs "
                    f"(available: {known}); it is ignored until it appears. Check the monitor "
                    "name (validation values are prefixed 'val_').",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return None
        value = logs[self.key]
        value = float(value.item() if isinstance(value, torch.Tensor) else value)
        if math.isnan(value) and self.key.startswith("val_"):
            return None
        return value

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best by more than ``min_delta`` (NaN never does)."""
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class MonitoredValue:
    """The original's public attributes of a callback that watches one ``logs`` key.

    ``monitor``, ``mode`` (setting it starts the best value over), ``monitor_op`` and ``best``,
    kept in ``self._monitor`` (a :class:`Monitor` the subclass creates).
    """

    _monitor: Monitor

    @property
    def monitor(self) -> str:
        """The ``logs`` key watched."""
        return self._monitor.key

    @monitor.setter
    def monitor(self, key: str) -> None:
        self._monitor.key = key

    @property
    def mode(self) -> str:
        """``"min"`` or ``"max"``; setting it starts the best value over."""
        return self._monitor.mode

    @mode.setter
    def mode(self, mode: str) -> None:
        self._monitor.set_mode(mode)

    @property
    def monitor_op(self) -> Any:
        """``torch.lt`` (mode ``"min"``) or ``torch.gt`` (mode ``"max"``)."""
        return self._monitor.op

    @property
    def best(self) -> BestValue:
        """The best monitored value so far (the baseline, or ``inf``/``-inf``, before any)."""
        return BestValue(self._monitor.best)

    @best.setter
    def best(self, value: Any) -> None:
        self._monitor.best = as_float(value)
