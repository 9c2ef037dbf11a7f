"""One ``NNHandler.train()`` call: checks, then a generated module fitted by a Lightning Trainer."""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from typing import TYPE_CHECKING, Any

import torch

from ._dist_env import DistEnv

if TYPE_CHECKING:  # pragma: no cover
    from .handler import NNHandler

__all__ = ["run", "device_for_rank", "init_process_group", "build_module", "module_arguments"]

# Lightning's start-up banners ("GPU available: ...") and tips, which the original never printed.
_QUIET_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.pytorch.accelerators.cuda",
    "lightning.fabric.utilities.seed",
)
_QUIET_WARNINGS = (
    r".*does not have many workers.*",
    r".*You defined a `validation_step` but have no `val_dataloader`.*",
    r".*number of training batches.*is smaller than the logging interval.*",
    r".*`training_step` returned `None`.*",
    r".*isinstance\(treespec, LeafSpec\).*",
    r".*module\(s\) in eval mode at the start of training.*",  # keep_eval_on_module
    r".*The `srun` command is available on your system but is not used.*",
    # Epoch values are reduced across ranks before they are logged: no sync_dist needed.
    r".*when logging on epoch level in distributed setting.*",
)


def device_for_rank(device: torch.device, dist: DistEnv) -> torch.device:
    """Under DDP each process uses its local GPU (or the CPU)."""
    if dist.distributed and device.type == "cuda":
        return torch.device("cuda", dist.local_rank)
    return device


def init_process_group(handler: NNHandler) -> None:
    """Create the process group at construction so ``_rank`` etc. are usable at once."""
    from .adapters.strategy import ensure_process_group

    ensure_process_group(handler._dist, handler._device)


@contextlib.contextmanager
def quiet_lightning():
    """Silence Lightning's informational banners and tips for the duration of a run."""
    saved = []
    for name in _QUIET_LOGGERS:
        log = logging.getLogger(name)
        saved.append((log, log.level))
        log.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for pattern in _QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            yield
        finally:
            for log, level in saved:
                log.setLevel(level)


def _positive_int(name: str, value: Any, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        low = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {low} int, got {value!r}.")
    return value


def _check(handler: NNHandler) -> None:
    missing = []
    if handler._module is None:
        missing.append("model (set_model)")
    if handler._optimizer is None:
        missing.append("optimizer (set_optimizer)")
    if handler._loss is None:
        missing.append("loss function (set_loss_fn)")
    if handler._train_data is None:
        missing.append("training data (set_train_loader)")
    if missing:
        raise RuntimeError("Cannot train: missing " + ", ".join(missing) + ".")
    if handler._model_type.value == "score_based" and handler._sde is None:
        raise RuntimeError("Cannot train a SCORE_BASED model without an SDE: call set_sde(...).")


def _setup_ema(handler: NNHandler, decay: float) -> None:
    if not isinstance(decay, (int, float)) or isinstance(decay, bool) or not 0.0 <= decay < 1.0:
        raise ValueError(f"ema_decay must be a float in [0, 1), got {decay!r}.")
    if decay == 0.0:
        return
    if handler._ema is None or handler._ema_decay != decay:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        handler._ema = AveragedModel(
            handler._module, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True
        )
        handler._ema.requires_grad_(False)
    handler._ema_decay = float(decay)
    handler._ema.to(handler._device)


def build_module(handler: NNHandler, debug_print_interval: int | None = None):
    """The generated LightningModule for the handler's current configuration."""
    from .adapters.module import HandlerModule

    return HandlerModule(**module_arguments(handler, debug_print_interval))


def module_arguments(handler: NNHandler, debug_print_interval: int | None = None) -> dict[str, Any]:
    """``HandlerModule`` keyword arguments for the handler's current configuration."""
    return dict(
        model=handler.model,
        model_type=handler._model_type,
        loss=handler._loss,
        metrics=handler._metrics.as_dict(),
        optimizer=handler._optimizer,
        scheduler=handler._scheduler,
        sde=handler._sde,
        ema=handler._ema,
        history=handler._history,
        eval_modules=handler._eval_modules,
        debug_print_interval=debug_print_interval,
        logger=handler._logger,
        stop_owner=handler,
    )


def lightning_callbacks(handler: NNHandler, save_on_last_epoch: bool) -> list[Any]:
    """Epoch logs first, then native callbacks, then Lightning callbacks, then the AutoSaver."""
    from .adapters.callback_bridge import NativeCallbackBridge
    from .adapters.epoch_logs import EpochLogs
    from .callbacks.base import Callback

    native = [c for c in handler._callbacks if isinstance(c, Callback)]
    others = [c for c in handler._callbacks if not isinstance(c, Callback)]
    callbacks: list[Any] = [EpochLogs()]
    if native:
        # Lightning dispatches every hook to every callback (6 per training step), so a bridge
        # with nothing to call would cost per-step time for nothing.
        callbacks.append(NativeCallbackBridge(native, handler))
    callbacks += others
    if handler._auto_save.enabled:
        from .adapters.autosaver import AutoSaver

        callbacks.append(AutoSaver(handler, save_on_last_epoch=save_on_last_epoch))
    return callbacks


def run(
    handler: NNHandler,
    *,
    epochs: int,
    validate_every: int | None,
    gradient_accumulation_steps: int,
    use_amp: bool,
    gradient_clipping_norm: float | None,
    ema_decay: float,
    seed: int | None,
    progress_bar: bool,
    debug_print_interval: int | None,
    save_on_last_epoch: bool,
    epoch_train_and_val_pbar: bool,
    trainer_kwargs: dict[str, Any] | None,
) -> None:
    """Run ``epochs`` more epochs of training for ``handler``."""
    import lightning as L

    from .adapters.callback_bridge import lightning_loggers
    from .adapters.strategy import strategy_arguments
    from .adapters.trainer_factory import (
        TrainPlan,
        check_trainer_kwargs,
        continue_from,
        trainer_arguments,
    )

    _check(handler)
    _positive_int("epochs", epochs)
    validate_every = _positive_int("validate_every", validate_every or 0, allow_zero=True)
    _positive_int("gradient_accumulation_steps", gradient_accumulation_steps)
    if gradient_clipping_norm is not None and not (
        isinstance(gradient_clipping_norm, (int, float))
        and gradient_clipping_norm > 0
        and math.isfinite(gradient_clipping_norm)
    ):
        raise ValueError(
            "gradient_clipping_norm must be a positive number or None, got "
            f"{gradient_clipping_norm!r}."
        )
    if debug_print_interval is not None:
        _positive_int("debug_print_interval", debug_print_interval)
    trainer_kwargs = {} if trainer_kwargs is None else trainer_kwargs
    check_trainer_kwargs(trainer_kwargs)
    trainer_kwargs = dict(trainer_kwargs)
    if seed is not None:
        handler.seed = seed
    _setup_ema(handler, ema_decay)
    _apply_loaded_loader_rng(handler)

    validate = validate_every > 0 and handler._val_data is not None
    plan = TrainPlan(
        epochs=epochs,
        start_epoch=handler._history.epochs_done,
        validate_every=validate_every,
        gradient_accumulation_steps=gradient_accumulation_steps,
        gradient_clipping_norm=gradient_clipping_norm,
        use_amp=use_amp,
        progress_bar=progress_bar and handler._rank == 0,
        epoch_train_and_val_pbar=epoch_train_and_val_pbar,
    )
    module = build_module(handler, debug_print_interval)
    callbacks = lightning_callbacks(handler, save_on_last_epoch)
    args = trainer_arguments(
        plan,
        handler._device,
        callbacks,
        loggers=lightning_loggers(handler._callbacks, handler._auto_save.save_path),
        has_checkpointing=any(_is_checkpoint(c) for c in callbacks),
        root_dir=handler._auto_save.save_path,
        scaler=_grad_scaler(handler, use_amp),
    )
    args.update(strategy_arguments(handler._dist, handler._device, handler._ddp_kwargs))
    args.update(trainer_kwargs)
    handler._stop_training = False
    with quiet_lightning():
        trainer = L.Trainer(**args)
        continue_from(trainer, plan.start_epoch, handler._global_step)
        train_loader, val_loader = _loaders(handler, validate, trainer_kwargs)
        trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)
    handler._global_step = int(trainer.global_step)
    # Lightning's teardown moves the model to the CPU; the handler's device is the contract.
    handler._module.to(handler._device)
    handler.eval(activate=False, log=False)  # train mode, eval-locked modules stay in eval
    if handler._ema is not None:
        handler._ema.to(handler._device)


def _loaders(handler: NNHandler, validate: bool, trainer_kwargs: dict[str, Any]) -> tuple:
    """The loaders to fit on: the handler's own (under DDP, sharded when they were set)."""
    from ._data import use_shuffle_seed

    train = handler.train_loader
    use_shuffle_seed(train, handler.seed)  # the seed may have been set after set_train_loader
    return train, handler.val_loader if validate else None


def _apply_loaded_loader_rng(handler: NNHandler) -> None:
    """After ``NNHandler.load``: loaders with their own generator continue its saved state."""
    pending = getattr(handler, "_pending_loader_rng", None)
    if not pending:
        return
    from .checkpoint._rng import set_generator_state

    for role, slot in (("train", handler._train_data), ("val", handler._val_data)):
        if slot is not None and slot.loader is not None:
            set_generator_state(slot.loader, pending.get(role))
    handler._pending_loader_rng = None


def _grad_scaler(handler: NNHandler, use_amp: bool) -> Any:
    """The handler's own GradScaler, kept across ``train`` calls (CUDA AMP only)."""
    if not (use_amp and handler._device.type == "cuda"):
        return None
    if handler._grad_scaler is None:
        handler._grad_scaler = torch.amp.GradScaler("cuda")
    return handler._grad_scaler


def _is_checkpoint(callback: Any) -> bool:
    from lightning.pytorch.callbacks import Checkpoint

    return isinstance(callback, Checkpoint)
