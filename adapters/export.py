"""``NNHandler`` → a plain LightningModule, a LightningDataModule and a Lightning CLI config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import lightning as L

from nn_handler._dist_env import DistEnv

from .datamodule import HandlerDataModule
from .module import HandlerModule

if TYPE_CHECKING:  # pragma: no cover
    from nn_handler.handler import NNHandler

__all__ = [
    "ExportedHandlerModule",
    "HandlerDataModule",
    "export_config",
    "to_datamodule",
    "to_lightning_module",
]


class ExportedHandlerModule(HandlerModule):
    """A handler's whole setup as a LightningModule any ``lightning.Trainer`` can run.

    It shares the handler's objects (model, optimizer, scheduler, history, callbacks): fitting it
    trains the handler. ``configure_callbacks`` brings the epoch logs, the native callbacks, the
    handler's Lightning callbacks and, when auto-save is on, the AutoSaver. Checkpoints written
    while fitting it also hold the handler's keys, so ``NNHandler.load`` reads them; a handler
    checkpoint given as ``ckpt_path`` resumes it.

    Epochs continue from the handler's history (as ``train()`` does): after ``train(2)``,
    ``Trainer(max_epochs=4).fit(module)`` runs epochs 3 and 4.

    Args:
        handler: the :class:`~nn_handler.NNHandler` to export.
        debug_print_interval: log the batch loss every N training batches.
        save_on_last_epoch: the AutoSaver also saves after the Trainer's last epoch.
    """

    def __init__(
        self,
        handler: NNHandler,
        debug_print_interval: int | None = None,
        save_on_last_epoch: bool = True,
    ):
        from nn_handler._training import module_arguments

        _check_ready(handler)
        super().__init__(**module_arguments(handler, debug_print_interval))
        # A plain attribute: the handler is not an nn.Module and must stay out of the registry.
        self.__dict__["handler"] = handler
        self.save_on_last_epoch = bool(save_on_last_epoch)

    # ------------------------------------------------------------- callbacks
    def configure_callbacks(self) -> list[L.Callback]:
        from nn_handler._training import lightning_callbacks

        return lightning_callbacks(self.handler, self.save_on_last_epoch)

    def setup(self, stage: str) -> None:
        # Lightning appends model callbacks after the Trainer's own; the epoch logs must come
        # first, as in train(), so that Lightning callbacks reading ``loss`` at epoch end see it.
        from .callback_bridge import NativeCallbackBridge
        from .epoch_logs import EpochLogs

        callbacks = self.trainer.callbacks
        first = [c for c in callbacks if isinstance(c, (EpochLogs, NativeCallbackBridge))]
        rest = [c for c in callbacks if not isinstance(c, (EpochLogs, NativeCallbackBridge))]
        self.trainer.callbacks = first + rest
        if self.trainer.world_size > 1 and not self.handler._dist.distributed:
            # Launched by Lightning (CLI, strategy="ddp"): callbacks read the rank from the handler.
            self.handler._dist = DistEnv(
                distributed=True,
                rank=self.trainer.global_rank,
                local_rank=self.trainer.local_rank,
                world_size=self.trainer.world_size,
                source="lightning",
                local_world_size=self.trainer.num_devices,
                num_nodes=self.trainer.num_nodes,
                node_rank=self.trainer.node_rank,
            )

    # -------------------------------------------------------------- progress
    def on_fit_start(self) -> None:
        from .trainer_factory import continue_from

        if self.ema is not None:
            self.ema.to(self.device)
        trainer = self.trainer
        done = self.history.epochs_done
        if trainer.ckpt_path is None and trainer.current_epoch == 0 and done:
            continue_from(trainer, done, self.handler._global_step)

    def on_fit_end(self) -> None:
        self.handler._global_step = int(self.trainer.global_step)
        self.model.train()

    # ----------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add the handler's keys, so ``NNHandler.load`` reads what Lightning writes."""
        from nn_handler.checkpoint import handler_checkpoint

        self.handler._global_step = int(self.trainer.global_step)
        for key, value in handler_checkpoint(self.handler, trainer=self.trainer).items():
            # Lightning's own keys (state_dict, loops, optimizer_states, ...) stay authoritative.
            checkpoint.setdefault(key, value)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the handler state Lightning does not know about (history, EMA)."""
        from nn_handler.checkpoint._read import check_format

        check_format(checkpoint, "The checkpoint Lightning resumed from")
        if "train_losses" in checkpoint:
            self.history.load_state_dict(checkpoint)
        ema_state = checkpoint.get("ema_state_dict")
        if ema_state is not None and self.ema is not None:
            self.ema.load_state_dict(ema_state)
        if "global_step" in checkpoint:
            self.handler._global_step = int(checkpoint["global_step"])


def _check_ready(handler: NNHandler) -> None:
    missing = []
    if handler._optimizer is None:
        missing.append("optimizer (set_optimizer)")
    if handler._loss is None:
        missing.append("loss function (set_loss_fn)")
    if missing:
        raise RuntimeError(
            "Cannot export to a LightningModule: missing " + ", ".join(missing) + "."
        )


def to_lightning_module(handler: NNHandler, **kwargs: Any) -> ExportedHandlerModule:
    """The handler's setup as an :class:`ExportedHandlerModule` (shares the handler's objects)."""
    return ExportedHandlerModule(handler, **kwargs)


def to_datamodule(handler: NNHandler) -> HandlerDataModule:
    """A :class:`HandlerDataModule` serving the loaders ``train()`` would fit on.

    Under DDP these are this rank's shards, as in ``train()``.
    """
    from nn_handler._training import _apply_loaded_loader_rng, _loaders

    if handler._train_data is None:
        raise RuntimeError("The handler has no training data: call set_train_loader(...) first.")
    _apply_loaded_loader_rng(handler)
    train, val = _loaders(handler, handler._val_data is not None, {})
    return HandlerDataModule.from_loaders(train, val)


def export_config(handler: NNHandler, path: str, strict: bool = True, **train_args: Any) -> None:
    """Write the Lightning CLI YAML that rebuilds ``handler`` (see :mod:`.config_writer`)."""
    from .config_writer import write_config

    write_config(handler, path, strict=strict, **train_args)
