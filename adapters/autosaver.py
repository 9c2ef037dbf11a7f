"""The AutoSaver: NNHandler's ``auto_save`` rules on top of Lightning's ``ModelCheckpoint``."""

from __future__ import annotations

import os
import string
import warnings
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

from nn_handler.checkpoint import atomic_save, handler_checkpoint
from nn_handler.checkpoint._atomic import remove_quietly

__all__ = ["AutoSaver", "auto_save_name", "should_auto_save"]


def should_auto_save(
    interval: int | None, epoch: int, last: bool, save_on_last_epoch: bool
) -> bool:
    """Whether 1-based global ``epoch`` is saved: every ``interval`` epochs, -1 → only the last
    epoch of a ``train`` call, and the last one too when ``save_on_last_epoch``."""
    if not interval:
        return False
    if interval > 0 and epoch % interval == 0:
        return True
    return last and (interval == -1 or save_on_last_epoch)


def auto_save_name(pattern: str, logs: dict[str, Any], epoch: int) -> str:
    """``pattern.format(**logs)`` with ``.pth`` appended; a missing key warns and falls back to
    the pattern's literal text followed by ``_epoch<NN>``."""
    try:
        name = pattern.format(**logs)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as err:
        literal = "".join(text for text, *_ in string.Formatter().parse(pattern)).rstrip("_-. ")
        name = f"{literal or 'model'}_epoch{epoch:02d}"
        warnings.warn(
            f"Auto-save name {pattern!r} cannot be formatted with the epoch logs "
            f"({type(err).__name__}: {err}; available keys: {sorted(logs)}); saving as "
            f"{name + '.pth'!r} instead.",
            UserWarning,
            stacklevel=2,
        )
    return name if name.endswith(".pth") else name + ".pth"


class AutoSaver(ModelCheckpoint):
    """Writes full NNHandler checkpoints by the ``auto_save`` rules (SPEC §4).

    Saves after global 1-based epochs N, 2N, ... (``interval=N``), after the last epoch of each
    ``train`` call (``interval=-1``, or ``save_on_last_epoch``), named by formatting the epoch
    logs. With ``overwrite`` the new file is written first and the previous auto-save removed
    afterwards. It runs after every other ``on_train_epoch_end`` hook (Lightning calls checkpoint
    callbacks last), so the epoch's history and scheduler step are in the file. Only rank 0 writes;
    the other ranks wait. Each file also holds Lightning's own resume keys.

    Args:
        handler: the NNHandler whose ``_auto_save`` settings and state this saver uses.
        save_on_last_epoch: also save after the last epoch of the ``train`` call.
    """

    def __init__(self, handler: Any, save_on_last_epoch: bool = True):
        config = handler._auto_save
        super().__init__(
            dirpath=config.save_path,
            save_top_k=0,
            save_last=False,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
        )
        self.handler = handler
        self.save_on_last_epoch = bool(save_on_last_epoch)

    @property
    def state_key(self) -> str:
        return "nn_handler.AutoSaver"

    def setup(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        # The directory is the handler's; it is created on the first save, not at setup.
        self.dirpath = self.handler._auto_save.save_path

    # Saving happens only at the end of a training epoch: never per step, at validation end,
    # on an exception or at the end of fit.
    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_validation_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        return None

    def on_exception(self, trainer: L.Trainer, pl_module: Any, exception: BaseException) -> None:
        return None

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        return None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        config = self.handler._auto_save
        epoch = trainer.current_epoch + 1
        last = trainer.max_epochs is not None and epoch >= trainer.max_epochs
        if not should_auto_save(config.interval, epoch, last, self.save_on_last_epoch):
            return
        logs = dict(getattr(pl_module, "epoch_logs", None) or {})
        logs["epoch"] = epoch
        path = os.path.join(config.save_path, auto_save_name(config.name, logs, epoch))
        self._write(trainer, path)

    def _write(self, trainer: L.Trainer, path: str) -> None:
        config = self.handler._auto_save
        previous = config.last_saved
        # Every rank builds Lightning's part (strategies may gather state); rank 0 writes.
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        config.last_saved = path
        try:
            if trainer.is_global_zero:
                checkpoint.update(handler_checkpoint(self.handler, trainer))
                checkpoint["auto_saved"] = True
                atomic_save(checkpoint, path)
                if config.overwrite and previous and _differs(previous, path):
                    remove_quietly(previous)
                self.handler._logger.info("Auto-saved checkpoint %s.", path)
        except BaseException:
            config.last_saved = previous
            raise
        finally:
            trainer.strategy.barrier("nn_handler.AutoSaver")
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = path
        self.last_model_path = path

    def state_dict(self) -> dict[str, Any]:
        return self.handler._auto_save.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "last_saved_model" in state_dict:
            self.handler._auto_save.last_saved = state_dict["last_saved_model"]


def _differs(a: str, b: str) -> bool:
    return os.path.abspath(a) != os.path.abspath(b)
