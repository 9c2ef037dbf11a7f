"""``train()``'s console: Lightning's tqdm progress bar shaped as the original NNHandler's."""

from __future__ import annotations

import multiprocessing
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

# Lightning's Tqdm is tqdm.auto's class when ipywidgets is installed (a widget in Jupyter) and
# the text tqdm otherwise.
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm, convert_inf
from tqdm.std import tqdm as _text_tqdm

from ..._ops.epoch_summary import epoch_summary
from ..steps.batch_hooks import PerBatchHooks

__all__ = ["EpochProgressBar"]


class _TextTqdm(_text_tqdm):
    """Lightning's Tqdm as text, wherever it runs."""

    format_num = staticmethod(Tqdm.format_num)


def _bar_class() -> type:
    """Lightning's bar; text in a worker process (``ddp_notebook``, ``ddp_spawn``).

    A widget displayed by a process forked from a Jupyter kernel may never reach the notebook,
    while its text output does.
    """
    return _TextTqdm if multiprocessing.parent_process() is not None else Tqdm


def _advance(bar: Tqdm) -> None:
    """One more epoch, drawn now (``update`` may skip drawing within tqdm's mininterval)."""
    if not bar.disable:
        bar.n += 1
        bar.refresh()


class EpochProgressBar(PerBatchHooks, TQDMProgressBar):
    """One ``Epochs`` bar whose postfix is the epoch summary, as the original shows on rank 0.

    Epochs count from 1 and continue across ``train()`` calls (``3/4`` after resuming at epoch
    3 of 4). The postfix (``Train Loss: ... | Val Loss: ... | LR: ...``) is set once per
    epoch from ``pl_module.epoch_logs``; nothing is read from the device per step. With
    ``batch_bars`` (``train(epoch_train_and_val_pbar=True)``) an ``E<n> Train`` and an
    ``E<n> Val`` bar below it count the batches of each epoch. As in the original, the two are
    independent: ``train(progress_bar=False, epoch_train_and_val_pbar=True)`` shows the batch
    bars alone. Bars write to ``stderr``, as tqdm does by default.

    Args:
        epoch_bar: show the ``Epochs`` bar (``train(progress_bar=...)``).
        batch_bars: show per-batch training and validation bars.
    """

    def __init__(self, epoch_bar: bool = True, batch_bars: bool = False):
        super().__init__()
        self.epoch_bar = bool(epoch_bar)
        self.batch_bars = bool(batch_bars)
        self._epoch_bar: Tqdm | None = None
        self._batch_bar: Tqdm | None = None

    def _bar(self, **kwargs: Any) -> Tqdm:
        return _bar_class()(disable=self.is_disabled, dynamic_ncols=True, **kwargs)

    def _close_batch_bar(self) -> None:
        if self._batch_bar is not None:
            self._batch_bar.close()
            self._batch_bar = None

    def _batch_bar_for(self, trainer: L.Trainer, stage: str, total: float) -> None:
        self._close_batch_bar()
        if self.batch_bars:
            self._batch_bar = self._bar(
                desc=f"E{trainer.current_epoch + 1} {stage}",
                unit="batch",
                total=convert_inf(total),
                position=2 * self.process_position + int(self.epoch_bar),
                leave=False,
            )

    def _fitting(self, trainer: L.Trainer) -> bool:
        return trainer.state.fn == "fit"

    # ----------------------------------------------------------------- epochs
    def on_sanity_check_start(self, *_: Any) -> None:
        """No bar for Lightning's sanity check (``train()`` runs none)."""

    def on_sanity_check_end(self, *_: Any) -> None:
        """No bar for Lightning's sanity check."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.epoch_bar:
            return
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        self._epoch_bar = self._bar(
            desc="Epochs",
            unit="epoch",
            total=total,
            initial=trainer.current_epoch,
            position=2 * self.process_position,
            leave=True,
        )
        # Lightning's print() (and so trainer.print) writes above this bar.
        self.train_progress_bar = self._epoch_bar

    def on_train_epoch_start(self, trainer: L.Trainer, *_: Any) -> None:
        self._batch_bar_for(trainer, "Train", self.total_train_batches)

    def batch_hooks(self) -> tuple[str, ...]:
        return ("train_batch_ended", "val_batch_ended") if self.batch_bars else ()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, *_: Any) -> None:
        if not getattr(pl_module, "calls_batch_hooks", False):
            self.train_batch_ended()

    def train_batch_ended(self, *_: Any) -> None:
        if self._batch_bar is not None:
            self._batch_bar.update(1)

    def val_batch_ended(self, trainer: L.Trainer, *_: Any) -> None:
        if self._batch_bar is not None and self._fitting(trainer):
            self._batch_bar.update(1)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._close_batch_bar()
        if self._epoch_bar is None:
            return
        logs = getattr(pl_module, "epoch_logs", None) or {}
        if logs:
            names = getattr(pl_module, "metric_names", None)
            self._epoch_bar.set_postfix_str(epoch_summary(logs, names), refresh=False)
        _advance(self._epoch_bar)

    def on_train_end(self, *_: Any) -> None:
        self._close_batch_bar()
        if self._epoch_bar is not None:
            self._epoch_bar.close()

    def on_exception(self, *_: Any) -> None:
        self.on_train_end()

    # ------------------------------------------------------------- validation
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._fitting(trainer):
            super().on_validation_start(trainer, pl_module)
        elif not trainer.sanity_checking:
            self._batch_bar_for(trainer, "Val", self.total_val_batches)

    def on_validation_batch_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if not self._fitting(trainer):
            super().on_validation_batch_start(trainer, *args, **kwargs)

    def on_validation_batch_end(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if not self._fitting(trainer):
            super().on_validation_batch_end(trainer, *args, **kwargs)
        elif not getattr(args[0], "calls_batch_hooks", False):
            self.val_batch_ended(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._fitting(trainer):
            super().on_validation_end(trainer, pl_module)
        else:
            self._close_batch_bar()
