"""Builds the epoch ``logs`` dict, records history and steps the scheduler, once per epoch."""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import torch

from ...callbacks.tensorboard import writes_epoch_values_itself

__all__ = ["EpochLogs", "lr_logs"]


def lr_logs(optimizer: Any) -> dict[str, float]:
    """``lr`` (first parameter group) and ``lr_group_<i>`` for every group."""
    if optimizer is None:
        return {}
    groups = optimizer.param_groups
    out = {"lr": float(groups[0]["lr"])}
    for i, group in enumerate(groups):
        out[f"lr_group_{i}"] = float(group["lr"])
    return out


class EpochLogs(L.Callback):
    """First callback of every run: turns the module's device-side sums into epoch ``logs``.

    Validation values are reduced at the end of validation (so Lightning callbacks monitoring
    ``val_loss`` see them), training values at the end of the training epoch. Then the epoch is
    appended to the history, the scheduler is stepped (after the logs record the epoch's lr), and
    the values are handed to Lightning: callbacks read them from ``trainer.callback_metrics``
    (validation values from the end of validation on), loggers get the epoch's training and
    validation values in one write at the end of the training epoch.
    """

    def __init__(self) -> None:
        self._t0 = 0.0
        self._val: dict[str, float] | None = None
        self._lr: dict[str, float] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        # A fit resumed inside an epoch (a mid-epoch checkpoint) starts without that epoch's
        # on_train_epoch_start; the module restores the epoch's sums itself.
        self._val = None
        self.refresh_lr(pl_module.optimizer)
        self._t0 = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        pl_module.reset_stage("train")
        self._val = None
        self.refresh_lr(pl_module.optimizer)
        self._t0 = time.perf_counter()

    def refresh_lr(self, optimizer: Any) -> None:
        """Record the learning rates the epoch trains with (again, if a callback changed them)."""
        self._lr = lr_logs(optimizer)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        pl_module.reset_stage("val")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        values = pl_module.reduce_stage("val")
        self._val = {f"val_{k}": v for k, v in values.items()}
        pl_module.epoch_logs = dict(self._val)
        _publish(pl_module, self._val)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        pl_module.reset_stage("val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        values = pl_module.reduce_stage("val")
        _publish(pl_module, {f"test_{k}": v for k, v in values.items()})

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        logs: dict[str, Any] = {"epoch": trainer.current_epoch + 1}
        logs.update(pl_module.reduce_stage("train"))
        if self._val is not None:
            logs.update(self._val)
        else:
            logs["val_loss"] = math.nan
            for name in pl_module.metric_names:
                logs[f"val_{name}"] = math.nan
        logs["epoch_time"] = time.perf_counter() - self._t0
        logs.update(self._lr)
        pl_module.history.record(logs, pl_module.metric_names)
        pl_module.epoch_logs = logs
        pl_module.step_scheduler(logs)
        values = {k: v for k, v in logs.items() if k != "epoch"}
        if self._val is None:
            values = {k: v for k, v in values.items() if not k.startswith("val_")}
        _publish(pl_module, values, to_loggers=True)


def _publish(pl_module: Any, values: dict[str, Any], to_loggers: bool = False) -> None:
    """Hand finite epoch values to Lightning's callbacks (and, with ``to_loggers``, loggers).

    While fitting, the values go straight into ``trainer.callback_metrics`` and one
    ``log_metrics`` call per epoch: ``log_dict`` would build result objects anew in every fit
    (most of the fixed cost a ``train()`` call adds to a plain ``Trainer.fit``) and write the
    validation and training values to the loggers in two calls. ``validate()``/``test()``
    return what ``log_dict`` records, so they use it.
    """
    finite = {k: float(v) for k, v in values.items() if not math.isnan(float(v))}
    if not finite:
        return
    trainer = pl_module.trainer
    if trainer.state.fn != "fit":
        pl_module.log_dict(finite, on_step=False, on_epoch=True, sync_dist=False)
        return
    device = pl_module.device
    trainer.callback_metrics.update({k: torch.tensor(v, device=device) for k, v in finite.items()})
    if to_loggers and trainer.loggers:
        _log_epoch_values(trainer, finite)


def _log_epoch_values(trainer: L.Trainer, values: dict[str, float]) -> None:
    """One write of the epoch values to the Trainer's loggers, as ``self.log`` would, except
    to a native ``TensorBoardLogger``'s Lightning run: that callback writes them itself."""
    loggers = [lg for lg in trainer.loggers if not writes_epoch_values_itself(lg)]
    if len(loggers) == len(trainer.loggers):
        # Typed as tensors, but Lightning's connector turns floats into scalars as well.
        trainer._logger_connector.log_metrics(values)  # type: ignore[arg-type]
        return
    metrics = {**values, "epoch": trainer.current_epoch}
    step = trainer.fit_loop.epoch_loop._batches_that_stepped
    for logger in loggers:
        logger.log_metrics(metrics=metrics, step=step)
        logger.save()
