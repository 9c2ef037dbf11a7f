"""``ProgressMonitor``: one summary line per epoch."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from ._common import is_rank_zero
from .base import Callback

__all__ = ["ProgressMonitor"]


def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


class ProgressMonitor(Callback):
    """Print ``Epoch 3/10 - 0.42s - loss: 0.5123 - val_loss: 0.6011 - lr: 1.00e-03`` each epoch.

    Printed on rank 0 only. ``val_loss`` is left out in epochs without validation.

    Args:
        stream: where to write (default: ``sys.stdout`` at the time of printing).
        precision: decimals shown for losses.
    """

    def __init__(self, stream: TextIO | None = None, precision: int = 4):
        super().__init__()
        self.stream = stream
        self.precision = int(precision)
        self._total: int | None = None
        self.epoch_start_time: float | None = None  # time.time() when the epoch began

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch_start_time = time.time()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._total = (logs or {}).get("total_epochs")

    def format_line(self, epoch: int, logs: dict[str, Any]) -> str:
        """The line printed for 0-based ``epoch`` with these epoch ``logs``."""
        number = logs.get("epoch", epoch + 1)
        parts = [f"Epoch {number}/{self._total}" if self._total else f"Epoch {number}"]
        seconds = _number(logs.get("epoch_time"))
        if seconds is not None:
            parts.append(f"{seconds:.2f}s")
        for key in ("loss", "val_loss"):
            value = _number(logs.get(key))
            if value is not None:
                parts.append(f"{key}: {value:.{self.precision}f}")
        lr = _number(logs.get("lr"))
        if lr is not None:
            parts.append(f"lr: {lr:.2e}")
        return " - ".join(parts)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not is_rank_zero(self.handler):
            return
        stream = self.stream if self.stream is not None else sys.stdout
        print(self.format_line(epoch, logs or {}), file=stream, flush=True)
