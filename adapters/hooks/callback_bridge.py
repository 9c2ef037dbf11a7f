"""Drives native ``nn_handler`` callbacks from Lightning's hooks."""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch

from ..._ops.batches import batch_size_of
from ...callbacks.base import HOOKS, Callback
from ..steps.batch_hooks import PerBatchHooks
from .epoch_logs import EpochLogs
from .overrides import overridden_hooks

__all__ = [
    "NativeCallbackBridge",
    "lightning_loggers",
    "restore_callback_states",
]


def _as_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean())
    return float(value)


def _first(batch: Any) -> Any:
    if isinstance(batch, (list, tuple)) and batch:
        return batch[0]
    return batch


class NativeCallbackBridge(PerBatchHooks, L.Callback):
    """One Lightning callback that calls every native callback's overridden hooks.

    Batch ``logs`` are built only when some callback overrides that batch hook, so callbacks that
    only use epoch hooks add no per-batch cost (and no host sync). A native callback that raises is
    reported with its class and hook, and training goes on, as in the original NNHandler. Setting
    ``handler._stop_training = True`` stops every rank after the current epoch.

    Args:
        callbacks: the native callbacks, in call order.
        logger: where failures of callbacks are logged (the handler's logger).
        run_state: whose ``stop_requested`` flag is cleared when training starts.
    """

    def __init__(self, callbacks: list[Callback], logger: Any = None, run_state: Any = None):
        self.callbacks = list(callbacks)
        self.logger = logger
        self.run_state = run_state
        self._by_hook = {
            h: [c for c in self.callbacks if h in overridden_hooks(c, Callback, HOOKS)]
            for h in HOOKS
        }
        self._start_epoch = 0
        self._failures: dict[tuple[int, str], int] = {}

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self._by_hook[hook]:
            try:
                getattr(cb, hook)(*args)
            except Exception as err:  # noqa: BLE001 - reported, training goes on by design
                self._report(cb, hook, err)

    def _report(self, cb: Callback, hook: str, err: Exception) -> None:
        """Log every failure; warn once per callback and hook (batch hooks could flood)."""
        message = f"Callback {type(cb).__name__}.{hook} raised {type(err).__name__}: {err}"
        if self.logger is not None:
            self.logger.error(message, exc_info=True)
        key = (id(cb), hook)
        self._failures[key] = self._failures.get(key, 0) + 1
        if self._failures[key] == 1:
            warnings.warn(
                message + " (training continues; further errors of this hook are only logged)",
                RuntimeWarning,
                stacklevel=3,
            )

    def _world(self, trainer: L.Trainer) -> int:
        return int(trainer.world_size)

    # ------------------------------------------------------------------ fit
    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self._start_epoch = trainer.current_epoch
        if self.run_state is not None:
            self.run_state.clear_stop()
        self._call(
            "on_train_begin",
            {
                "start_epoch": self._start_epoch,
                "total_epochs": trainer.max_epochs,
                "world_size": self._world(trainer),
            },
        )

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        logs = dict(pl_module.epoch_logs)
        logs["final_epoch"] = int(logs.get("epoch", trainer.current_epoch))
        logs["world_size"] = self._world(trainer)
        self._call("on_train_end", logs)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        epoch = trainer.current_epoch
        if not self._by_hook["on_epoch_begin"]:
            return
        self._call("on_epoch_begin", epoch, {"epoch": epoch + 1})
        # A callback may have just set the learning rate (ParamScheduler): the epoch logs must
        # report the rate this epoch really uses.
        for cb in trainer.callbacks:  # type: ignore[attr-defined]  # Lightning: undeclared Trainer attribute
            if isinstance(cb, EpochLogs):
                cb.refresh_lr(getattr(pl_module, "optimizer", None))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        # The stop flag they may set is read by HandlerModule.on_train_epoch_end, which runs next.
        self._call("on_epoch_end", trainer.current_epoch, pl_module.epoch_logs)

    # ---------------------------------------------------------------- batches
    _NATIVE_BATCH_HOOKS = {
        "train_batch_started": "on_train_batch_begin",
        "train_batch_ended": "on_train_batch_end",
        "val_batch_started": "on_val_batch_begin",
        "val_batch_ended": "on_val_batch_end",
    }

    def batch_hooks(self) -> tuple[str, ...]:
        return tuple(k for k, native in self._NATIVE_BATCH_HOOKS.items() if self._by_hook[native])

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._by_hook["on_train_batch_begin"] and not pl_module.calls_batch_hooks:
            self.train_batch_started(trainer, pl_module, batch, batch_idx)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._by_hook["on_train_batch_end"] and not pl_module.calls_batch_hooks:
            self.train_batch_ended(trainer, pl_module, outputs, batch, batch_idx)

    def train_batch_started(
        self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        size = batch_size_of(_first(batch))
        self._call("on_train_batch_begin", batch_idx, {"batch": batch_idx, "size": size})

    def train_batch_ended(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        logs = {"batch": batch_idx, "size": batch_size_of(_first(batch))}
        logs.update({k: _as_float(v) for k, v in pl_module.last_batch_values.items()})
        self._call("on_train_batch_end", batch_idx, logs)

    # ----------------------------------------------------------- validation
    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._call("on_val_begin", {"epoch": trainer.current_epoch + 1})

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            logs = {"epoch": trainer.current_epoch + 1}
            logs.update(pl_module.epoch_logs)
            self._call("on_val_end", logs)

    def on_validation_batch_start(
        self,
        trainer: L.Trainer,
        pl_module: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._by_hook["on_val_batch_begin"] and not pl_module.calls_batch_hooks:
            self.val_batch_started(trainer, pl_module, batch, batch_idx)

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: Any,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._by_hook["on_val_batch_end"] and not pl_module.calls_batch_hooks:
            self.val_batch_ended(trainer, pl_module, outputs, batch, batch_idx)

    def val_batch_started(
        self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if not trainer.sanity_checking:
            size = batch_size_of(_first(batch))
            self._call("on_val_batch_begin", batch_idx, {"batch": batch_idx, "size": size})

    def val_batch_ended(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not trainer.sanity_checking:
            logs = {"batch": batch_idx, "size": batch_size_of(_first(batch))}
            logs.update({k: _as_float(v) for k, v in pl_module.last_batch_values.items()})
            self._call("on_val_batch_end", batch_idx, logs)

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "callback_classes": [type(c).__name__ for c in self.callbacks],
            "callback_states": [c.state_dict() for c in self.callbacks],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore native callback states by class name (a Lightning checkpoint resume)."""
        restore_callback_states(
            self.callbacks,
            state_dict.get("callback_classes", []),
            state_dict.get("callback_states", []),
        )


def restore_callback_states(
    callbacks: list[Callback], classes: list[str], states: list[dict[str, Any]]
) -> None:
    """Give each saved state to the callback of the same class name, in order.

    The n-th saved state of a class goes to the n-th callback of that class. A saved state with
    no matching callback is skipped with a warning naming it.
    """
    pending: dict[str, list[Callback]] = {}
    for cb in callbacks:
        pending.setdefault(type(cb).__name__, []).append(cb)
    for name, state in zip(classes, states):
        targets = pending.get(name)
        if not targets:
            warnings.warn(
                f"A saved state of callback {name!r} has no matching callback on this handler; "
                "it is ignored (add the callback before loading to restore it).",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        targets.pop(0).load_state_dict(state)


def lightning_loggers(callbacks: list[Any], root_dir: str) -> list[Any]:
    """The Lightning loggers a ``train()`` Trainer gets.

    Native callbacks with a ``lightning_logger()`` method (the TensorBoard logger) contribute
    theirs. Without any, a Lightning callback that cannot run without a logger
    (``LearningRateMonitor``, ``DeviceStatsMonitor``) gets Lightning's default TensorBoard logger
    in ``root_dir/lightning_logs``, as a plain ``lightning.Trainer`` would.
    """
    loggers = []
    for cb in callbacks:
        make = getattr(cb, "lightning_logger", None)
        if isinstance(cb, Callback) and callable(make):
            logger = make()
            if logger is not None:
                loggers.append(logger)
    from lightning.pytorch.callbacks import DeviceStatsMonitor, LearningRateMonitor

    # Lightning callbacks that refuse to run on a Trainer without a logger.
    needs_one = (LearningRateMonitor, DeviceStatsMonitor)
    if not loggers and any(isinstance(cb, needs_one) for cb in callbacks):
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=root_dir))
    return loggers
