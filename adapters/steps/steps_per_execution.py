"""``train(steps_per_execution=...)``: how many batches one Lightning training step runs.

``"auto"`` runs :data:`AUTO_BATCHES` batches per step when nothing can tell the difference from
one batch per step, and one otherwise; an int asks for that many. Whatever is asked, some runs
need one batch per step (:func:`why_one_batch`), and get it with a warning when more was asked;
``"auto"`` says why in the debug log.

Under DDP a chunk's batches run inside one forward of Lightning's ``DistributedDataParallel``
wrapper; each synchronising backward prepares the reducer (see :mod:`.manual_steps`), so the
gradients are all-reduced once per optimizer step, as with one batch per step. Processes started
outside the Trainer (torchrun, SLURM, Lightning's subprocess launcher) qualify; DDP options that
change the reducer's bookkeeping per forward (``find_unused_parameters``, ``static_graph``) or
the step (``model_averaging_period``), and workers Lightning spawns or forks, keep one batch per
step: the tests do not cover them with several batches per step.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy
from lightning.pytorch.strategies.launchers import _MultiProcessingLauncher

from ..hooks.overrides import overridden_hooks
from .batch_hooks import PerBatchHooks
from .chunked_module import ChunkedHandlerModule
from .manual_steps import STEP_HOOKS, ManualSteps
from .module import HandlerModule

_log = logging.getLogger(__name__)

__all__ = [
    "AUTO_BATCHES",
    "build_fit_module",
    "hooked_callbacks",
    "resolve_steps_per_execution",
    "why_one_batch",
]

#: Batches per Lightning step that ``"auto"`` picks when it may.
AUTO_BATCHES = 16

# Lightning calls these once per chunk; a callback that overrides one makes "auto" pick 1.
LIGHTNING_BATCH_HOOKS = (
    "on_train_batch_start",
    "on_train_batch_end",
    "on_validation_batch_start",
    "on_validation_batch_end",
)


def _quiet_checkpoint(callback: Any) -> bool:
    """A ``ModelCheckpoint`` that saves by epoch only does nothing in its batch hook."""
    return (
        isinstance(callback, ModelCheckpoint)
        and not callback._every_n_train_steps
        and callback._train_time_interval is None
    )


def hooked_callbacks(callbacks: list[Any]) -> list[str]:
    """``Class.hook`` for every batch, backward or optimizer-step hook that ``callbacks``
    override, the handler's own per-batch callbacks excepted."""
    found = []
    for cb in callbacks:
        if isinstance(cb, PerBatchHooks):
            continue
        hooks = STEP_HOOKS if _quiet_checkpoint(cb) else LIGHTNING_BATCH_HOOKS + STEP_HOOKS
        found += [f"{type(cb).__name__}.{h}" for h in overridden_hooks(cb, L.Callback, hooks)]
    return found


def why_one_batch(trainer: L.Trainer, train_loader: Any, trainer_kwargs: dict[str, Any]) -> str:
    """Why this run must take one batch per Lightning step ("" when it need not)."""
    reason = _why_strategy(trainer)
    if reason:
        return reason
    try:
        len(train_loader)
    except TypeError:
        return "the training loader has no length (its last batch is known only after it)"
    if trainer.max_steps != -1:
        return "max_steps may end training inside a chunk"
    if any(isinstance(c, ModelCheckpoint) and c._every_n_train_steps for c in trainer.callbacks):  # type: ignore[attr-defined]  # Lightning: undeclared Trainer attribute
        # Its files must record the loader's position after a whole step, not inside a chunk.
        return "a checkpoint is saved every N training steps"
    interval = trainer_kwargs.get("val_check_interval")
    if interval is not None and not (isinstance(interval, float) and interval == 1.0):
        return "val_check_interval validates inside the epoch"
    if trainer_kwargs.get("check_val_every_n_epoch", 1) is None:
        return "check_val_every_n_epoch=None validates by steps"
    return ""


# DDP options that make the reducer count or search per forward, or act after each step.
_UNPROVEN_DDP_OPTIONS = ("find_unused_parameters", "static_graph")


def _why_strategy(trainer: L.Trainer) -> str:
    """Why the strategy or precision plugin needs one batch per step ("" when it need not)."""
    plugin = type(trainer.precision_plugin)
    if plugin not in (Precision, MixedPrecision):
        return f"the precision plugin {plugin.__name__} steps itself"
    strategy = trainer.strategy
    kind = type(strategy)
    if kind is SingleDeviceStrategy:
        return ""
    if type(strategy) is not DDPStrategy:
        return f"the {kind.__name__} is not covered with several batches per step"
    if isinstance(strategy.launcher, _MultiProcessingLauncher):
        return "DDP workers spawned or forked by the Trainer are not covered"
    options = strategy._ddp_kwargs
    for name in _UNPROVEN_DDP_OPTIONS:
        if options.get(name):
            return f"DDP's {name}=True is not covered with several batches per step"
    if strategy._model_averaging_period:
        return "DDP's model averaging acts after each step"
    return ""


def resolve_steps_per_execution(
    requested: str | int,
    trainer: L.Trainer,
    train_loader: Any,
    trainer_kwargs: dict[str, Any],
) -> int:
    """The number of batches per Lightning step for this run (see the module docstring)."""
    reason = why_one_batch(trainer, train_loader, trainer_kwargs)
    if requested == "auto":
        if not reason:
            hooked = hooked_callbacks(trainer.callbacks)  # type: ignore[attr-defined]  # Lightning: undeclared Trainer attribute
            if hooked:
                reason = f"Lightning callback hooks need every batch: {', '.join(hooked)}"
            elif isinstance(trainer_kwargs.get("log_every_n_steps"), int):
                reason = "log_every_n_steps is given"
        if reason:
            _log.debug("steps_per_execution='auto' runs 1 batch per step: %s.", reason)
            return 1
        return AUTO_BATCHES
    assert isinstance(requested, int)  # TrainOptions allows "auto" or a positive int
    if requested > 1 and reason:
        warnings.warn(
            f"steps_per_execution={requested} runs as 1 batch per step: {reason}.",
            UserWarning,
            stacklevel=4,
        )
        return 1
    return int(requested)


def build_fit_module(
    module_kwargs: dict[str, Any], steps: ManualSteps, batches: int
) -> HandlerModule:
    """The module ``train()`` fits: per batch, or chunked when ``batches`` > 1."""
    if batches > 1:
        return ChunkedHandlerModule(steps_per_execution=batches, steps=steps, **module_kwargs)
    return HandlerModule(steps=steps, **module_kwargs)
