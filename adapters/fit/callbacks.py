"""The Lightning callbacks of a fit, and their order: the one place that decides both.

``train()`` runs, in this order:

1. :class:`ProcessPlace` — only in processes Lightning starts; put first on the Trainer once it
   exists (:func:`place_process_first`), so every other callback's ``setup`` sees the rank;
2. :class:`EpochLogs` — records the epoch into the history and steps the scheduler, before any
   callback reads the epoch's values;
3. :class:`EpochLogLine` — the epoch's log line, when the handler's logger writes at INFO;
4. :class:`NativeCallbackBridge` — the handler's native callbacks, when there are any;
5. the user's Lightning callbacks (``add_callback``), in the order given;
6. :class:`LeaveAloneOnSigterm` — under DDP of more than one process;
7. the :class:`AutoSaver` — when auto-save is on (Lightning runs checkpoint callbacks last anyway);
8. the :class:`EpochProgressBar` — when bars are asked for and the user gave no progress bar.

The exported module (``to_lightning_module``) hands items 2-7 to the user's Trainer
(:func:`model_callbacks`) and keeps the epoch logs and the bridge first (:func:`epoch_logs_first`).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint, ProgressBar

from ..._state.run_state import RunState
from ..._state.runtime import Runtime
from ..._state.setup import Setup
from ...callbacks.base import Callback
from ..hooks.autosaver import AutoSaver
from ..hooks.callback_bridge import NativeCallbackBridge
from ..hooks.epoch_log_line import EpochLogLine, logs_at_info
from ..hooks.epoch_logs import EpochLogs
from ..hooks.process_place import ProcessPlace
from ..hooks.progress_bar import EpochProgressBar
from .inputs import checkpoint_builder
from .interrupts import LeaveAloneOnSigterm
from .trainer_factory import TrainPlan

__all__ = [
    "epoch_logs_first",
    "has_checkpointing",
    "lightning_callbacks",
    "model_callbacks",
    "place_process_first",
    "train_callbacks",
]


def lightning_callbacks(
    setup: Setup, state: RunState, runtime: Runtime, save_on_last_epoch: bool
) -> list[Any]:
    """Epoch logs (and their log line) first, then native callbacks, then Lightning callbacks,
    then the AutoSaver (items 2-7 of the module docstring)."""
    native = [c for c in setup.callbacks if isinstance(c, Callback)]
    others = [c for c in setup.callbacks if not isinstance(c, Callback)]
    callbacks: list[Any] = [EpochLogs()]
    if logs_at_info(runtime.logger):
        callbacks.append(EpochLogLine(runtime.logger))
    if native:
        # Lightning dispatches every hook to every callback (6 per training step), so a bridge
        # with nothing to call would cost per-step time for nothing.
        callbacks.append(NativeCallbackBridge(native, runtime.logger, state))
    callbacks += others
    if runtime.dist.world_size > 1:
        callbacks.append(LeaveAloneOnSigterm(runtime.dist.rank))
    if setup.auto_save.enabled:
        callbacks.append(
            AutoSaver(
                setup.auto_save,
                state.saver,
                checkpoint_builder(setup, state, runtime),
                runtime.logger,
                save_on_last_epoch=save_on_last_epoch,
            )
        )
    return callbacks


def train_callbacks(
    setup: Setup, state: RunState, runtime: Runtime, plan: TrainPlan, save_on_last_epoch: bool
) -> list[Any]:
    """``train()``'s callbacks: :func:`lightning_callbacks`, then the progress bar when ``plan``
    asks for one and the user gave none (Lightning accepts one progress bar)."""
    callbacks = lightning_callbacks(setup, state, runtime, save_on_last_epoch)
    own_bar = any(isinstance(c, ProgressBar) for c in callbacks)  # a user's, via add_callback
    if (plan.progress_bar or plan.epoch_train_and_val_pbar) and not own_bar:
        callbacks.append(EpochProgressBar(plan.progress_bar, plan.epoch_train_and_val_pbar))
    return callbacks


def has_checkpointing(callbacks: Sequence[Any]) -> bool:
    """Whether any of ``callbacks`` writes checkpoints (the Trainer's ``enable_checkpointing``)."""
    return any(isinstance(c, Checkpoint) for c in callbacks)


def place_process_first(trainer: L.Trainer, state: RunState, runtime: Runtime) -> None:
    """Put :class:`ProcessPlace` first on ``trainer``: each process Lightning starts learns its
    rank at setup, before any other callback's setup runs."""
    trainer.callbacks.insert(0, ProcessPlace(state, runtime))  # type: ignore[attr-defined]  # Lightning: undeclared Trainer attribute


def model_callbacks(
    handler: Any,
    trainer: L.Trainer,
    handed: weakref.WeakSet[Any],
    save_on_last_epoch: bool,
) -> list[Any]:
    """The exported module's callbacks (:func:`lightning_callbacks`) that ``trainer`` does not
    have yet; checkpoint callbacks only while fitting.

    Args:
        handler: the exported handler (read through ``setup``, ``run_state``, ``runtime``).
        trainer: the Trainer asking (``LightningModule.configure_callbacks``).
        handed: callbacks handed to a Trainer before (a callback of the same class on the
            Trainer that is one of them is not handed again).
        save_on_last_epoch: the AutoSaver also saves after the Trainer's last epoch.
    """
    fitting = trainer.state.fn == "fit"
    parts = (handler.setup, handler.run_state, handler.runtime)
    out = []
    for callback in lightning_callbacks(*parts, save_on_last_epoch):
        if isinstance(callback, Checkpoint) and not fitting:
            continue  # the AutoSaver saves only while fitting
        present = trainer.callbacks  # type: ignore[attr-defined]  # Lightning: undeclared Trainer attribute
        if any(_already_there(c, callback, handed) for c in present):
            continue
        out.append(callback)
    return out


def epoch_logs_first(callbacks: Sequence[Any]) -> list[Any]:
    """``callbacks`` with the epoch logs and the native bridge moved first, as in ``train()``:
    Lightning appends a module's callbacks after the Trainer's own, and Lightning callbacks that
    read ``loss`` at epoch end must see it."""
    first = [c for c in callbacks if isinstance(c, (EpochLogs, NativeCallbackBridge))]
    rest = [c for c in callbacks if not isinstance(c, (EpochLogs, NativeCallbackBridge))]
    return first + rest


def _already_there(present: Any, callback: Any, handed: weakref.WeakSet[Any]) -> bool:
    """``callback`` itself, or one of its class handed earlier, is on the Trainer."""
    if present is callback:
        return True
    if type(present) is not type(callback):
        return False
    try:
        return present in handed
    except TypeError:  # neither hashable nor weakly referenceable: never handed by us
        return False
