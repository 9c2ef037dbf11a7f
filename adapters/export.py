"""``NNHandler`` → a plain LightningModule, a LightningDataModule and a Lightning CLI config."""

from __future__ import annotations

import contextlib
import weakref
from typing import TYPE_CHECKING, Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint

from .._env.dist_env import DistEnv
from .._state.run_state import RunState
from .._state.runtime import Runtime
from .._state.setup import Setup
from ..checkpoint._read import check_format
from .datamodule import HandlerDataModule
from .fit.callbacks import epoch_logs_first, model_callbacks
from .fit.checked_io import check_reads
from .fit.inputs import apply_loader_rng, checkpoint_builder, loaders, module_arguments
from .fit.resume_paths import drop_checkpoint_paths
from .fit.trainer_factory import continue_from
from .steps.module import HandlerModule

if TYPE_CHECKING:
    from ..handler import NNHandler

__all__ = [
    "ExportedHandlerModule",
    "HandlerDataModule",
    "to_datamodule",
    "to_lightning_module",
]

# What a user configures on a ModelCheckpoint; state (best scores, paths saved) is left out.
_CHECKPOINT_SETTINGS = (
    "dirpath",
    "filename",
    "monitor",
    "mode",
    "save_top_k",
    "save_last",
    "save_weights_only",
    "save_on_exception",
    "_every_n_epochs",
    "_every_n_train_steps",
    "_train_time_interval",
    "_save_on_train_epoch_end",
    "_enable_version_counter",
    "auto_insert_metric_name",
)


class ExportedHandlerModule(HandlerModule):
    """A handler's whole setup as a LightningModule any ``lightning.Trainer`` can run.

    It shares the handler's objects (model, optimizer, scheduler, history, callbacks): fitting it
    trains the handler. ``configure_callbacks`` brings the epoch logs, the native callbacks, the
    handler's Lightning callbacks and, when auto-save is on, the AutoSaver. Checkpoints written
    while fitting it also hold the handler's keys, so ``NNHandler.load`` reads them; a handler
    checkpoint given as ``ckpt_path`` resumes it.

    Epochs continue from the handler's history (as ``train()`` does): after ``train(2)``,
    ``Trainer(max_epochs=4).fit(module)`` runs epochs 3 and 4.

    The handler is read through its public parts (``setup``, ``run_state``, ``runtime``) when
    Lightning asks, so a setting changed after the export is seen by the next fit.

    Args:
        handler: the :class:`~nn_handler.NNHandler` to export.
        debug_print_interval: log the batch loss every N training batches.
        save_on_last_epoch: the AutoSaver also saves after the Trainer's last epoch.
    """

    handler: NNHandler  # a plain attribute (set through __dict__), declared for mypy

    def __init__(
        self,
        handler: NNHandler,
        debug_print_interval: int | None = None,
        save_on_last_epoch: bool = True,
    ):
        setup, state, runtime = handler.setup, handler.run_state, handler.runtime
        _check_ready(setup, runtime)
        super().__init__(**module_arguments(setup, state, runtime, debug_print_interval))
        # A plain attribute: the handler is not an nn.Module and must stay out of the registry.
        self.__dict__["handler"] = handler
        self.save_on_last_epoch = bool(save_on_last_epoch)

    # ------------------------------------------------------------- callbacks
    def configure_callbacks(self) -> list[L.Callback]:
        """The handler's callbacks this Trainer does not have yet, for the current stage.

        Lightning asks at every ``fit``/``validate``/``test``/``predict`` and lets what is
        returned replace Trainer callbacks of the same (or a parent) class, with a notice. So
        callbacks already handed to this Trainer are not handed again, the AutoSaver comes
        only with ``fit``, and the Trainer's own default ``ModelCheckpoint``, which the
        AutoSaver would replace anyway, is removed quietly.
        """
        trainer = self.trainer
        fitting = trainer.state.fn == "fit"
        handed = self.__dict__.setdefault("_handed_callbacks", weakref.WeakSet())
        callbacks = model_callbacks(self.handler, trainer, handed, self.save_on_last_epoch)
        if fitting and any(isinstance(c, Checkpoint) for c in callbacks):
            present = trainer.callbacks  # type: ignore[attr-defined]  # Lightning: undeclared Trainer attribute
            kept = [c for c in present if not _is_default_checkpoint(c)]
            trainer.callbacks = kept  # type: ignore[attr-defined]  # Lightning: undeclared Trainer attribute
        for callback in callbacks:
            with contextlib.suppress(TypeError):  # a user's callback that takes no weak reference
                handed.add(callback)
        return callbacks

    def setup(self, stage: str) -> None:
        # Lightning reads ``ckpt_path`` after this hook: a file holding what no checkpoint of
        # ours holds (a DeviceMesh, compressed entries) is refused before torch.load builds it.
        check_reads(self.trainer.strategy)
        # Lightning appends model callbacks after the Trainer's own; the epoch logs come first,
        # as in train() (fit/callbacks.py).
        present = self.trainer.callbacks  # type: ignore[attr-defined]  # Lightning: undeclared Trainer attribute
        self.trainer.callbacks = epoch_logs_first(present)  # type: ignore[attr-defined]  # Lightning: undeclared Trainer attribute
        runtime: Runtime = self.handler.runtime
        if self.trainer.world_size > 1 and not runtime.dist.distributed:
            # Launched by Lightning (CLI, strategy="ddp"): callbacks read the rank from the handler.
            runtime.dist = DistEnv(
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
        handler = self.handler
        self.run_state.ensure_ema(handler.module, handler.setup.training.ema_decay, self.device)
        trainer = self.trainer
        done = self.history.epochs_done
        if trainer.ckpt_path is None and trainer.current_epoch == 0 and done:
            continue_from(trainer, done, self.run_state.global_step)

    def on_fit_end(self) -> None:
        self.run_state.record_global_step(self.trainer.global_step)
        self.model.train()

    # ----------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add the handler's keys (of its setup now), so ``NNHandler.load`` reads what Lightning
        writes."""
        handler = self.handler
        self.__dict__["checkpoint_keys"] = checkpoint_builder(
            handler.setup, self.run_state, handler.runtime
        )
        super().on_save_checkpoint(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the handler state Lightning does not know about (history, EMA, step); drop the
        file paths in ModelCheckpoint states (``resume_paths``)."""
        check_format(checkpoint, "The checkpoint Lightning resumed from")
        # Lightning restores the callbacks after this hook: their states name no file to delete.
        drop_checkpoint_paths(checkpoint)
        state: RunState = self.run_state
        if "train_losses" in checkpoint:
            state.load_history(checkpoint)
        elif "global_step" in checkpoint:
            state.record_global_step(checkpoint["global_step"])
        ema_state = checkpoint.get("ema_state_dict")
        if ema_state is not None and state.ema is not None:
            state.ema.load_state_dict(ema_state)


def _is_default_checkpoint(callback: L.Callback) -> bool:
    """Whether ``callback`` is the ``ModelCheckpoint()`` a Trainer adds when given none."""
    if type(callback) is not ModelCheckpoint:
        return False
    default = ModelCheckpoint()
    return all(
        getattr(callback, name, None) == getattr(default, name, None)
        for name in _CHECKPOINT_SETTINGS
    )


def _check_ready(setup: Setup, runtime: Runtime) -> None:
    missing = []
    if runtime.optimizer is None:
        missing.append("optimizer (set_optimizer)")
    if setup.loss is None:
        missing.append("loss function (set_loss_fn)")
    if missing:
        raise RuntimeError(
            "Cannot export to a LightningModule: missing " + ", ".join(missing) + "."
        )


def to_lightning_module(handler: Any, **kwargs: Any) -> ExportedHandlerModule:
    """The handler's setup as an :class:`ExportedHandlerModule` (shares the handler's objects)."""
    return ExportedHandlerModule(handler, **kwargs)


def to_datamodule(setup: Setup, state: RunState, runtime: Runtime) -> HandlerDataModule:
    """A :class:`HandlerDataModule` serving the loaders ``train()`` would fit on.

    Under DDP these are this rank's shards, as in ``train()``.
    """
    if setup.train_data is None:
        raise RuntimeError("The handler has no training data: call set_train_loader(...) first.")
    apply_loader_rng(setup, state)
    train, val = loaders(setup, setup.val_data is not None)
    return HandlerDataModule.from_loaders(train, val)
