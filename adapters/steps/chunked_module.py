"""Chunked steps: one Lightning training step runs up to K batches (``steps_per_execution``).

Lightning spends a fixed time on every training step (progress counters, hooks dispatched to
every callback, the logger connector). :class:`ChunkedHandlerModule` takes the
``training_step(self, dataloader_iter)`` form and runs up to K batches per call, each exactly as
the per-batch module runs it: device transfer through the strategy, forward, loss, backward,
the optimizer step, step counter and EMA, and the per-batch hooks of the handler's own
callbacks (native callbacks, batch bars). Lightning's counters are kept in batches, so epoch
ends, validation, stopping, checkpoints and the step count are those of a per-batch run.
Validation reads its whole loader in one ``validation_step(self, dataloader_iter)``.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.utilities.data import extract_batch_size
from lightning.pytorch.utilities.model_helpers import is_overridden

from .batch_hooks import per_batch_calls
from .manual_steps import ManualSteps
from .module import HandlerModule

__all__ = ["ChunkedHandlerModule"]


class ChunkedHandlerModule(HandlerModule):
    """A :class:`HandlerModule` that runs up to ``steps_per_execution`` batches per step.

    Args:
        steps_per_execution: the most batches one Lightning training step runs (K >= 1).
        **kwargs: :class:`HandlerModule`'s arguments; ``steps`` is required.
    """

    calls_batch_hooks = True
    steps: ManualSteps  # required here (checked in __init__)

    def __init__(self, steps_per_execution: int, **kwargs: Any):
        super().__init__(**kwargs)
        if self.steps is None:
            raise ValueError("ChunkedHandlerModule needs steps=ManualSteps(...).")
        self.steps_per_execution = int(steps_per_execution)
        self._calls = per_batch_calls([])
        self.__dict__["_last_batch"] = None

    def on_train_start(self) -> None:
        super().on_train_start()
        trainer = self.trainer
        self._calls = per_batch_calls(trainer.callbacks)  # type: ignore[attr-defined]  # Lightning: undeclared Trainer attribute
        if _plain_transfer(trainer, self):
            self.__dict__["_transfer"] = _mover(trainer.strategy.root_device)

    def _transfer(self, batch: Any) -> Any:
        """What Lightning's loop does to a batch before the step (input conversion, the
        transfer hooks, the strategy's device)."""
        trainer = self.trainer
        batch = trainer.precision_plugin.convert_input(batch)
        batch = self._on_before_batch_transfer(batch, dataloader_idx=0)
        return trainer.strategy.batch_to_device(batch, dataloader_idx=0)

    # ------------------------------------------------------------------ train
    def training_step(self, dataloader_iter: Any) -> torch.Tensor | None:  # type: ignore[override]
        trainer = self.trainer
        fit_loop = trainer.fit_loop
        loop = fit_loop.epoch_loop
        progress = loop.batch_progress
        steps = self.steps.count
        before = steps.total.completed
        started = self._calls["train_batch_started"]
        ended = self._calls["train_batch_ended"]
        out = None
        step = False
        for n in range(self.steps_per_execution):
            if n:
                try:
                    batch, batch_idx, _ = next(dataloader_iter)
                except StopIteration:
                    break
                # Lightning counted the call's first batch; the others count here.
                progress.increment_by(1)
            else:
                batch, batch_idx, _ = next(dataloader_iter)
            progress.is_last_batch = dataloader_iter.done
            batch = self._transfer(batch)
            self.__dict__["_last_batch"] = batch
            for hook in started:
                hook(trainer, self, batch, batch_idx)
            self.on_train_batch_start(batch, batch_idx)
            # Lightning's own rules, read from its counters: the epoch's last batch, and whether
            # the optimizer steps after this one.
            last = loop._num_ready_batches_reached()
            step = not loop._should_accumulate()
            out = self.steps.run(self, self.train_batch(batch, batch_idx), batch_idx, step)
            for hook in ended:
                hook(trainer, self, out, batch, batch_idx)
            if (
                last
                or (trainer.should_stop and fit_loop._can_stop_early)
                or trainer.received_sigterm
            ):
                break
        # Lightning adds one to its logging step after the call when the last batch stepped;
        # it must count every optimizer step of the chunk.
        loop._batches_that_stepped += steps.total.completed - before - step
        return out

    # ------------------------------------------------------------- validation
    def validation_step(self, dataloader_iter: Any) -> None:  # type: ignore[override]
        trainer = self.trainer
        progress = trainer.fit_loop.epoch_loop.val_loop.batch_progress
        started = self._calls["val_batch_started"]
        ended = self._calls["val_batch_ended"]
        for n, (batch, batch_idx, _) in enumerate(dataloader_iter):
            if n:
                progress.increment_by(1)
            batch = self._transfer(batch)
            for hook in started:
                hook(trainer, self, batch, batch_idx)
            HandlerModule.validation_step(self, batch, batch_idx)
            for hook in ended:
                hook(trainer, self, None, batch, batch_idx)

    def log(
        self, name: str, value: Any, *args: Any, batch_size: int | None = None, **kwargs: Any
    ) -> None:
        """``LightningModule.log``; the batch size, which Lightning cannot infer with the
        ``dataloader_iter`` step form, defaults to that of the last training batch."""
        if batch_size is None and self.trainer.training:
            batch = self.__dict__["_last_batch"]
            batch_size = extract_batch_size(batch) if batch is not None else 1
        kwargs["batch_size"] = batch_size
        super().log(name, value, *args, **kwargs)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        HandlerModule.validation_step(self, batch, batch_idx)


_TRANSFER_HOOKS = (
    "on_before_batch_transfer",
    "transfer_batch_to_device",
    "on_after_batch_transfer",
)


def _plain_transfer(trainer: Any, module: HandlerModule) -> bool:
    """Whether moving a batch is just ``move_data_to_device``: no input conversion by the
    precision plugin and no transfer hook on the module or the datamodule (Lightning's
    defaults then do exactly that, through three hook calls per batch)."""
    if type(trainer.precision_plugin) not in (Precision, MixedPrecision):
        return False
    datamodule = trainer.datamodule
    return not any(
        is_overridden(hook, module) or (datamodule is not None and is_overridden(hook, datamodule))
        for hook in _TRANSFER_HOOKS
    )


def _mover(device: torch.device) -> Any:
    """``move_data_to_device(batch, device)``, with a short way for a list or tuple of tensors
    (what a ``DataLoader`` over a ``TensorDataset`` yields)."""
    blocking = device.type in ("cpu", "mps")  # Lightning's rule for non_blocking

    def move(batch: Any) -> Any:
        kind = type(batch)
        if kind is list or kind is tuple:
            moved = []
            for item in batch:
                if type(item) is not torch.Tensor:
                    return move_data_to_device(batch, device)
                moved.append(item.to(device) if blocking else item.to(device, non_blocking=True))
            return moved if kind is list else tuple(moved)
        return move_data_to_device(batch, device)

    return move
