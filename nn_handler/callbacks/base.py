"""The native callback base class."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from nn_handler._env.write_guard import WriteRoots
    from nn_handler.handler import NNHandler

__all__ = ["Callback", "HOOKS"]

HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_val_begin",
    "on_val_end",
    "on_val_batch_begin",
    "on_val_batch_end",
)


class Callback:
    """Base class for hooks into ``NNHandler.train``.

    Override only the hooks you need: hooks left as defined here are never called, so they cost
    nothing per batch. ``epoch`` arguments are 0-based; ``logs["epoch"]`` is 1-based. Set
    ``self.handler._stop_training = True`` to stop after the current epoch (on every rank). An
    exception raised by a hook is logged and warned about, and training goes on.

    Override :meth:`state_dict`/:meth:`load_state_dict` to have the callback's state saved by
    ``NNHandler.save`` and restored (by class name) by ``NNHandler.load``.

    Attributes:
        write_roots: ``None`` for a callback you construct: it writes where you say. A callback
            that ``NNHandler.load`` rebuilt from a file (no ``trust_checkpoint``) gets the
            checkpoint's folder and the working directory: the built-in writers check every path
            when they write (``nn_handler._env.write_guard.checked_destination``) and refuse others.
    """

    # A class default, so that subclasses skipping Callback.__init__ have it too.
    write_roots: WriteRoots | None = None

    def __init__(self) -> None:
        self.handler: NNHandler | None = None

    def set_handler(self, handler: NNHandler) -> None:
        """Bind this callback to ``handler`` (done by ``NNHandler.add_callback``)."""
        self.handler = handler

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called once when ``train()`` starts (``start_epoch``, ``total_epochs``,
        ``world_size``)."""

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called once when ``train()`` ends (the last epoch's logs, ``final_epoch``, ...)."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Called at the start of every epoch (``epoch``)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Called at the end of every epoch with the epoch logs (``loss``, metrics,
        ``val_loss``, ``val_<metric>``, ``epoch_time``, ``lr``, ``lr_group_<i>``)."""

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called before each training batch (``batch``, ``size``)."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called after each training batch (adds the batch ``loss`` and metrics)."""

    def on_val_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called before validation, in epochs that validate (``epoch``)."""

    def on_val_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called after validation (``epoch``, ``val_loss``, ``val_<metric>`` over all ranks)."""

    def on_val_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called before each validation batch (``batch``, ``size``)."""

    def on_val_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called after each validation batch (adds ``val_loss`` and metrics)."""

    def state_dict(self) -> dict[str, Any]:
        """State saved with the handler checkpoint."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
