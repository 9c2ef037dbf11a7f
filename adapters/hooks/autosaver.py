"""The AutoSaver: NNHandler's ``auto_save`` rules on top of Lightning's ``ModelCheckpoint``."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

from ..._env.atomic import atomic_save, remove_quietly
from ..._env.storage import makedirs
from ..._env.write_guard import DestinationRefused, checked_destination
from ..._ops.auto_save import auto_save_name, should_auto_save
from ..._state.autosave import AutoSaveSettings
from ..._state.run_state import SaverBookkeeping
from ..fit.trainer_factory import mirror_step_counters
from ..steps.batch_hooks import PerBatchHooks

__all__ = ["AutoSaver"]


class AutoSaver(PerBatchHooks, ModelCheckpoint):
    """Writes full NNHandler checkpoints by the ``auto_save`` rules (SPEC §4).

    Saves after global 1-based epochs N, 2N, ... (``interval=N``), after the last epoch of each
    ``train`` call (``interval=-1``, or ``save_on_last_epoch``), named by formatting the epoch
    logs. With ``overwrite`` the new file is written first and the previous auto-save removed
    afterwards — only the very file this process wrote (by identity: inode, size, mtime, or on a
    remote store its size and ETag, generation or time; ``_storage.identity``), inside
    ``save_path``: a name from the epoch logs never leaves the directory, a file named by a
    loaded checkpoint is never deleted, and another process's rewrite of the name survives.
    It runs after every other ``on_train_epoch_end`` hook (Lightning calls checkpoint callbacks
    last), so the epoch's history and scheduler step are in the file. Only rank 0 writes; the
    other ranks wait. Each file also holds Lightning's own resume keys.

    With ``every_n_train_steps=N`` it also saves after every N-th optimizer step, at the end of
    the batch that made it, named by ``step_name`` (``step``, ``epoch``: the 1-based epoch in
    progress); these files are one series with the epoch files for ``overwrite``. Lightning's
    loop state in them (and the state of a stateful training loader) resumes inside the epoch.

    Args:
        settings: the ``auto_save`` settings.
        bookkeeping: which files this process wrote (shared across ``train`` calls).
        handler_keys: ``trainer -> the handler's checkpoint entries`` at that moment.
        logger: where each save is logged.
        save_on_last_epoch: also save after the last epoch of the ``train`` call.
    """

    def __init__(
        self,
        settings: AutoSaveSettings,
        bookkeeping: SaverBookkeeping,
        handler_keys: Callable[[Any], dict[str, Any]],
        logger: Any = None,
        save_on_last_epoch: bool = True,
    ):
        super().__init__(
            dirpath=settings.save_path,
            save_top_k=0,
            save_last=False,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
            every_n_train_steps=settings.every_n_train_steps,
        )
        self.settings = settings
        self.bookkeeping = bookkeeping
        self.handler_keys = handler_keys
        self.py_logger = logger
        self.save_on_last_epoch = bool(save_on_last_epoch)

    @property
    def state_key(self) -> str:
        return "nn_handler.AutoSaver"

    def setup(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        # The directory is the handler's; it is created on the first save, not at setup.
        self.dirpath = self.settings.save_path

    # Saving happens at the end of a training epoch and, with every_n_train_steps, at the end of
    # a batch: never at validation end, on an exception or at the end of fit.
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        every = self.settings.every_n_train_steps
        if not every or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        step = trainer.global_step
        # Once per step: with gradient accumulation several batches end on the same step.
        if step == 0 or step % every or step == self._last_global_step_saved:
            return
        epoch = trainer.current_epoch + 1
        name = auto_save_name(self.settings.step_name, {"step": step, "epoch": epoch}, epoch)
        self._write(trainer, os.path.join(self.settings.save_path, name))

    def on_validation_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        return None

    def on_exception(self, trainer: L.Trainer, pl_module: Any, exception: BaseException) -> None:
        return None

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        return None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        settings = self.settings
        epoch = trainer.current_epoch + 1
        last = trainer.max_epochs is not None and epoch >= trainer.max_epochs
        if not should_auto_save(settings.interval, epoch, last, self.save_on_last_epoch):
            return
        logs = dict(getattr(pl_module, "epoch_logs", None) or {})
        logs["epoch"] = epoch
        name = auto_save_name(settings.name, logs, epoch)
        self._write(trainer, os.path.join(settings.save_path, name))

    def _write(self, trainer: L.Trainer, path: str) -> None:
        previous = self.bookkeeping.last_saved
        # Every rank builds Lightning's part (strategies may gather state); rank 0 writes.
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        mirror_step_counters(checkpoint["loops"], trainer.global_step)
        leaving = False
        try:
            if not trainer.is_global_zero:
                self.bookkeeping.record(path)
            elif self._may_write(path):
                makedirs(self.settings.save_path)  # a local folder or a URL's
                self._save(trainer, checkpoint, path, previous)
                save_path = self.settings.save_path
                if (
                    self.settings.overwrite
                    and previous
                    and self.bookkeeping.may_delete(previous, path, save_path)
                ):
                    remove_quietly(previous)
                    self.bookkeeping.forget(previous)
                if self.py_logger is not None:
                    self.py_logger.info("Auto-saved checkpoint %s.", path)
        except (SystemExit, KeyboardInterrupt):
            leaving = True  # a rank that is being stopped waits for no peer
            raise
        finally:
            if not leaving:
                trainer.strategy.barrier("nn_handler.AutoSaver")
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = path
        self.last_model_path = path

    def _may_write(self, path: str) -> bool:
        """False, with a warning, when settings a checkpoint brought back name a place outside
        its folder and the working directory (seen only now: a symlink, a formatted name)."""
        try:
            checked_destination(path, self.settings.write_roots, "an auto-save")
        except DestinationRefused as err:
            warnings.warn(f"{err} This auto-save is skipped.", RuntimeWarning, stacklevel=3)
            return False
        return True

    def _save(self, trainer: L.Trainer, checkpoint: dict, path: str, previous: str | None) -> None:
        was_ours = self.bookkeeping.wrote(path)
        self.bookkeeping.record(path)  # the file names itself as the last auto-save
        try:
            checkpoint.update(self.handler_keys(trainer))
            checkpoint["auto_saved"] = True
            atomic_save(checkpoint, path)
            self.bookkeeping.stamp(path)
        except BaseException:
            if not was_ours:
                self.bookkeeping.forget(path)
            self.bookkeeping.last_saved = previous
            raise

    def state_dict(self) -> dict[str, Any]:
        return self.settings.state_dict(self.bookkeeping.last_saved)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing is taken from a file: it may not choose what this saver deletes or where it
        writes (a ``Trainer.fit(ckpt_path=...)`` resume keeps the handler's own settings)."""
