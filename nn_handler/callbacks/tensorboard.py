"""``TensorBoardLogger``: per-epoch scalars to TensorBoard through Lightning's logger."""

from __future__ import annotations

import math
import os
import warnings
import weakref
from typing import Any

import torch

from .._env.write_guard import DestinationRefused, checked_destination
from ._common import is_rank_zero
from .base import Callback

__all__ = ["TensorBoardLogger"]

# Lightning's own logging (its callbacks, ``self.log``) goes to this run inside ``log_dir``.
LIGHTNING_RUN = "lightning"

# The Lightning loggers of native TensorBoardLogger callbacks: their callback writes the epoch
# values itself (step = epoch), so the Trainer's epoch-value write skips them (one series each).
_RUNS: weakref.WeakSet = weakref.WeakSet()


def writes_epoch_values_itself(logger: Any) -> bool:
    """Whether ``logger`` is a native ``TensorBoardLogger``'s Lightning run, which must not get
    the epoch values a second time."""
    try:
        return logger in _RUNS
    except TypeError:  # neither hashable nor weakly referenceable: not one of ours
        return False


def epoch_scalars(logs: dict[str, Any]) -> dict[str, float]:
    """The finite numeric values of ``logs``, without the ``epoch`` counter itself."""
    out = {}
    for key, value in logs.items():
        if key == "epoch" or isinstance(value, bool):
            continue
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[key] = float(value)
    return out


class TensorBoardLogger(Callback):
    """Write every numeric value of the epoch logs as a TensorBoard scalar, step = epoch (1-based).

    Backed by ``lightning.pytorch.loggers.TensorBoardLogger``; rank 0 writes. The scalars are the
    logs' keys (``loss``, ``val_loss``, metrics, ``val_<metric>``, ``lr``, ``lr_group_<i>``,
    ``epoch_time`` and anything earlier callbacks added); NaN values (no validation that epoch) are
    not written. During ``train()`` the Trainer also gets a Lightning TensorBoard logger writing
    into ``<log_dir>/lightning``, so Lightning callbacks that need a logger (e.g. its
    ``LearningRateMonitor``) and ``self.log`` calls work; the epoch values are not written there
    again, so each value has one series.

    Args:
        log_dir: the directory of the event files.
        comment: kept for compatibility (TensorBoard ignores it when ``log_dir`` is given).
    """

    def __init__(self, log_dir: str = "./logs", comment: str = ""):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.comment = comment
        self._logger: Any = None

    @property
    def logger(self) -> Any:
        """The Lightning ``TensorBoardLogger`` of the current ``train()`` call (or None)."""
        return self._logger

    def lightning_logger(self) -> Any:
        """A Lightning logger for the Trainer, in ``<log_dir>/lightning`` (rank 0 writes); None,
        with a warning, when ``log_dir`` is a place this callback may not write."""
        from lightning.pytorch.loggers import TensorBoardLogger as PLTensorBoardLogger

        try:
            log_dir = checked_destination(self.log_dir, self.write_roots, "TensorBoard logs")
        except DestinationRefused as err:
            warnings.warn(str(err), RuntimeWarning, stacklevel=2)
            return None
        run = PLTensorBoardLogger(save_dir=log_dir, name="", version=LIGHTNING_RUN)
        _RUNS.add(run)
        return run

    def _open(self) -> Any:
        if self._logger is None:
            from lightning.pytorch.loggers import TensorBoardLogger as PLTensorBoardLogger

            log_dir = checked_destination(self.log_dir, self.write_roots, "TensorBoard logs")
            self._logger = PLTensorBoardLogger(
                save_dir=log_dir, name="", version="", default_hp_metric=False
            )
        return self._logger

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if is_rank_zero(self.handler):
            self._open()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not is_rank_zero(self.handler):
            return
        scalars = epoch_scalars(logs or {})
        if scalars:
            self._open().log_metrics(scalars, step=epoch + 1)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._logger is not None:
            self._logger.finalize("success")
            self._logger = None
