"""The per-epoch summary line written through the handler's Python logger (rank 0)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import lightning as L
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

from ..._ops.epoch_summary import debug_lines, epoch_line

__all__ = ["EpochLogLine", "logs_at_info"]


def logs_at_info(logger: logging.Logger | None) -> bool:
    """Whether ``logger`` writes INFO records anywhere (``logger_mode`` was set, rank 0)."""
    return logger is not None and not logger.disabled and logger.isEnabledFor(logging.INFO)


class EpochLogLine(L.Callback):
    """Logs ``E1/5 [0.64s] Train Loss: ... | Val Loss: ... | LR: ...`` after each epoch.

    It runs after the epoch logs are built (``pl_module.epoch_logs``), on global rank 0 only.
    When the logger writes to the console, a progress bar is cleared while the line is written
    and drawn again below it, so the two never share a line.

    Args:
        logger: the handler's logger (``handler.logger``).
    """

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self._first_epoch: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self._first_epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        logs = getattr(pl_module, "epoch_logs", None)
        if not logs or not trainer.is_global_zero:
            return
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        names = getattr(pl_module, "metric_names", None)
        lines = [(logging.INFO, epoch_line(logs, total, names))]
        if self.logger.isEnabledFor(logging.DEBUG):
            first = trainer.current_epoch == self._first_epoch
            scheduler = pl_module.scheduler if first else None
            lines[:0] = [(logging.DEBUG, text) for text in debug_lines(logs, names, scheduler)]
        stream = _writes_to_a_stream(self.logger)
        with Tqdm.external_write_mode() if stream else contextlib.nullcontext():
            for level, text in lines:
                self.logger.log(level, text)


def _writes_to_a_stream(logger: logging.Logger) -> bool:
    """Whether a record may reach the terminal (a stream handler other than a log file)."""
    return any(
        isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
        for h in logger.handlers
    )
