"""``ProgressMonitor``: one summary line per epoch."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

from .._ops.epoch_summary import epoch_line
from ._common import is_rank_zero
from .base import Callback

__all__ = ["ProgressMonitor"]


class ProgressMonitor(Callback):
    """Print the epoch summary line after each epoch, on rank 0.

    The line is the one ``logger_mode`` logs and the progress bar's postfix shows:
    ``E3/10 [0.42s] Train Loss: 5.1230e-01 Train Metrics: [acc=0.8123] | Val Loss: 6.0110e-01
    Val Metrics: [val_acc=0.8000] | LR: 1.00e-03``; the validation part only in epochs that
    validated.

    Args:
        stream: where to write (default: ``sys.stdout`` at the time of printing).
        precision: digits after the point of losses (scientific) and metrics.
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
        logs = {"epoch": epoch + 1, **logs}
        # The handler's metric names: other callbacks may have added keys to the logs.
        handler = getattr(self, "handler", None)
        names = list(handler.metrics) if handler is not None else None
        return epoch_line(logs, self._total, names, self.precision)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not is_rank_zero(self.handler):
            return
        stream = self.stream if self.stream is not None else sys.stdout
        # A progress bar on the terminal is cleared for the line and drawn again below it.
        with tqdm.external_write_mode(file=stream):
            print(self.format_line(epoch, logs or {}), file=stream, flush=True)
