"""``EpochTimer``: measure each epoch's wall-clock time."""

from __future__ import annotations

import time
from typing import Any

from .base import Callback

__all__ = ["EpochTimer"]


class EpochTimer(Callback):
    """Time every epoch from ``on_epoch_begin`` to ``on_epoch_end``.

    Adds ``epoch_time_sec`` to the epoch logs (so callbacks after it, such as a logger, see it) and
    appends it to ``times``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []
        self._start: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._start is None:
            return
        elapsed = time.perf_counter() - self._start
        self._start = None
        self.times.append(elapsed)
        if logs is not None:
            logs["epoch_time_sec"] = elapsed

    def state_dict(self) -> dict[str, Any]:
        return {"times": list(self.times)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.times = list(state_dict.get("times", []))
