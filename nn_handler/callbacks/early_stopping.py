"""``EarlyStopping``: stop training when a monitored value stops improving."""

from __future__ import annotations

import warnings
from typing import Any

import torch

from ._common import BestValue, Monitor, MonitoredValue, bare_module, is_rank_zero, positive_int
from .base import Callback

__all__ = ["EarlyStopping"]


class EarlyStopping(MonitoredValue, Callback):
    """Stop after ``patience`` epochs without an improvement of ``monitor``.

    Args:
        monitor: the ``logs`` key watched (``"val_loss"``, ``"loss"``, ``"val_accuracy"``…).
        min_delta: an improvement must beat the best value by more than this.
        patience: epochs without improvement tolerated before stopping (0 stops at the first).
        mode: ``"min"`` or ``"max"``.
        verbose: 1 prints when training stops (and when weights are restored).
        restore_best_weights: when stopping, load the model weights of the best epoch back
            (an exact copy, kept in memory and in this callback's saved state).
        baseline: a value the monitored quantity must beat; epochs that do not beat it count
            against the patience like epochs without improvement (``None``: no baseline).

    Decisions use the epoch logs, which are aggregated over ranks and identical on all of them, so
    every rank stops at the same epoch. Epochs where a monitored ``val_*`` value is NaN
    (validation did not run) neither improve nor count against the patience.

    Each ``train()`` call starts fresh (best, wait), except right after the state of a run that
    had not stopped was restored from a checkpoint (``NNHandler.load``): then the saved count
    goes on.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 10,
        mode: str = "min",
        verbose: int = 0,
        restore_best_weights: bool = False,
        baseline: float | None = None,
    ):
        super().__init__()
        positive_int("EarlyStopping", "patience", patience, minimum=0)
        self.patience = patience
        self.verbose = int(verbose)
        self.restore_best_weights = bool(restore_best_weights)
        self._monitor = Monitor("EarlyStopping", monitor, mode, min_delta, baseline)
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights: dict[str, torch.Tensor] | None = None
        self._resumed = False

    @property
    def min_delta(self) -> float:
        """How much a value must beat the best by to count as an improvement (>= 0)."""
        return self._monitor.min_delta

    @min_delta.setter
    def min_delta(self, value: float) -> None:
        self._monitor.min_delta = abs(float(value))

    @property
    def baseline(self) -> float | None:
        return self._monitor.baseline

    # Names of the original's EarlyStopping sketch (callbacks/monitor.md).
    @property
    def wait_count(self) -> int:
        """Same as :attr:`wait`: epochs since the last improvement."""
        return self.wait

    @wait_count.setter
    def wait_count(self, value: int) -> None:
        self.wait = int(value)

    @property
    def best_score(self) -> BestValue:
        """Same as :attr:`best`."""
        return self.best

    @best_score.setter
    def best_score(self, value: Any) -> None:
        self.best = value

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        resumed, self._resumed = self._resumed, False
        if resumed and self.stopped_epoch == 0:
            return  # continue the interrupted run's count
        self._monitor.reset()
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = self._monitor.current(logs)
        if value is None:
            return
        if self._monitor.improved(value):
            self._monitor.best = value
            self.best_epoch = epoch + 1
            self.wait = 0
            if self.restore_best_weights:
                state = bare_module(self.handler).state_dict()
                self.best_weights = {k: v.detach().clone() for k, v in state.items()}
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        self.stopped_epoch = epoch + 1
        if self.handler is not None:
            self.handler._stop_training = True
        self._say(
            f"Epoch {self.stopped_epoch}: early stopping ({self.monitor} did not improve on "
            f"{self.best:.5f} from epoch {self.best_epoch} for {self.wait} epochs)"
        )
        if self.restore_best_weights and self.best_weights is not None:
            bare_module(self.handler).load_state_dict(self.best_weights)
            self._say(f"Restored the model weights of epoch {self.best_epoch}.")

    def _say(self, message: str) -> None:
        logger = getattr(self.handler, "logger", None)
        if logger is not None:
            logger.info("EarlyStopping: %s", message)
        if self.verbose > 0 and is_rank_zero(self.handler):
            print(message)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "monitor": self.monitor,
            "mode": self.mode,
            "best": float(self.best),
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
        }
        if self.restore_best_weights and self.best_weights is not None:
            weights = self.best_weights.items()
            state["best_weights"] = {k: v.detach().cpu().clone() for k, v in weights}
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = (state_dict.get("monitor", self.monitor), state_dict.get("mode", self.mode))
        if saved != (self.monitor, self.mode):
            warnings.warn(
                f"EarlyStopping: the saved state monitors {saved[0]!r} ({saved[1]}) "
                f"but this callback monitors {self.monitor!r} ({self.mode}); "
                "the saved state is not restored.",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        self._monitor.best = float(state_dict.get("best", self.best))
        self.best_epoch = int(state_dict.get("best_epoch", 0))
        self.wait = int(state_dict.get("wait", 0))
        self.stopped_epoch = int(state_dict.get("stopped_epoch", 0))
        weights = state_dict.get("best_weights")
        if weights is not None:
            device = _device_of(self.handler)
            self.best_weights = {k: v.to(device) if device else v for k, v in weights.items()}
        self._resumed = True


def _device_of(handler: Any) -> torch.device | None:
    try:
        return next(handler.module.parameters()).device
    except (AttributeError, StopIteration):
        return None
