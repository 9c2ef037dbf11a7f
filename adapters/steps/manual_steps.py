"""Backward, gradient accumulation, clipping, AMP scaling and the optimizer step of ``train()``.

The generated module trains with Lightning's *manual* optimization; this module does what
Lightning's automatic optimization did before, with the same numbers:

- the loss is divided by the accumulation count ``A`` before ``backward``; gradients are zeroed
  at the first batch of each window (``batch_idx % A == 0``); the optimizer steps after every
  ``A``-th batch of the epoch and after its last batch (a partial window);
- gradients are clipped (by norm or value) right before the step, after AMP unscaling;
- a batch whose loss was not finite (SPEC §3.4) has no backward; with a ``GradScaler`` its
  optimizer step is skipped, without one the optimizer steps on what the window gathered (as
  before); either way the step counts and the EMA is updated;
- every optimizer step counts in ``trainer.global_step`` and is followed by the EMA update.

Two ways to run a step. The *direct* way calls ``backward`` and ``optimizer.step`` itself and
counts the step in Lightning's progress: used on one device, or under Lightning's plain
``DDPStrategy`` (whose backward then only prepares the reducer, which the direct way does too),
with plain or mixed precision when no callback needs Lightning's backward and optimizer hooks.
Otherwise the *Lightning* way goes through ``manual_backward`` and the ``LightningOptimizer``
(hooks, other strategies and precision plugins), and clipping happens in the module's
``on_before_optimizer_step`` hook, where automatic optimization clipped.

Under DDP (Lightning's strategy wraps the module in ``DistributedDataParallel``), the backward of
a batch whose window does not end with it runs in the wrapper's ``no_sync()``: gradients gather
locally and are all-reduced once, by the window's last backward, as a careful hand-written loop
does. Each synchronising backward prepares the reducer (Lightning's ``prepare_for_backward``,
either way), so one Lightning step may run several windows (chunked steps).
"""

from __future__ import annotations

import contextlib
import numbers
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.precision.amp import _optimizer_handles_unscaling
from lightning.pytorch.overrides.distributed import prepare_for_backward
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy
from lightning.pytorch.trainer import call
from lightning.pytorch.utilities.enums import GradClipAlgorithmType
from torch.nn.parallel import DistributedDataParallel

from ..hooks.overrides import overridden_hooks

__all__ = [
    "STEP_HOOKS",
    "ManualSteps",
    "StepSettings",
    "plain_ddp",
    "plain_single_device",
]

_NULL = contextlib.nullcontext()


# Hooks that run around backward and the optimizer step; the direct way skips them.
STEP_HOOKS = (
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
)
_ALGORITHMS = ("norm", "value")


@dataclass(frozen=True)
class StepSettings:
    """How gradients become optimizer steps.

    Attributes:
        accumulate: batches per optimizer step (``gradient_accumulation_steps``).
        clip_val: clip gradients at this norm (or value); ``None`` or 0 does not clip.
        clip_algorithm: ``"norm"`` or ``"value"``.
    """

    accumulate: int = 1
    clip_val: float | None = None
    clip_algorithm: str = "norm"

    @classmethod
    def take_from(cls, trainer_args: dict[str, Any]) -> StepSettings:
        """Remove Lightning's accumulation and clipping arguments from ``trainer_args``.

        Lightning refuses them with manual optimization; they come from ``train()``'s options
        or from ``trainer_kwargs``, which may override them.

        Raises:
            ValueError: a value Lightning would also refuse, named.
        """
        accumulate = trainer_args.pop("accumulate_grad_batches", 1)
        clip = trainer_args.pop("gradient_clip_val", None)
        algorithm = trainer_args.pop("gradient_clip_algorithm", None) or "norm"
        if isinstance(accumulate, bool) or not isinstance(accumulate, int) or accumulate < 1:
            raise ValueError(
                f"accumulate_grad_batches must be a positive int, got {accumulate!r} "
                "(use train(gradient_accumulation_steps=N))."
            )
        if clip is not None and (
            isinstance(clip, bool) or not isinstance(clip, numbers.Real) or clip < 0
        ):
            raise ValueError(f"gradient_clip_val must be a non-negative number, got {clip!r}.")
        algorithm = str(algorithm).lower()
        if algorithm not in _ALGORITHMS:
            raise ValueError(
                f"gradient_clip_algorithm must be 'norm' or 'value', got {algorithm!r}."
            )
        return cls(int(accumulate), float(clip) if clip else None, algorithm)


class ManualSteps:
    """Turns each training batch's loss into backward passes and optimizer steps.

    Built once per ``train()`` call; :meth:`attach` reads the Trainer when training starts.

    Args:
        settings: accumulation and clipping.
    """

    def __init__(self, settings: StepSettings | None = None):
        self.settings = settings or StepSettings()
        self.direct = True
        self._trainer: Any = None
        self._ddp: DistributedDataParallel | None = None

    # ----------------------------------------------------------------- setup
    def attach(self, module: L.LightningModule) -> None:
        """Read the Trainer's optimizer, precision and progress counters (``on_train_start``)."""
        trainer = module.trainer
        # Lightning's own bookkeeping (steps for the loggers, when to zero before validation,
        # resume arithmetic) then counts optimizer steps as automatic optimization did; the
        # configuration check that refuses this value has already passed, and Lightning's own
        # GradientAccumulationScheduler sets it the same way.
        trainer.accumulate_grad_batches = self.settings.accumulate
        self._trainer = trainer
        self._loop = trainer.fit_loop.epoch_loop
        self.count = self._loop.manual_optimization.optim_step_progress
        self._optimizer = trainer.optimizers[0]
        self._lightning_optimizer = trainer.strategy._lightning_optimizers[0]
        plugin: Any = trainer.precision_plugin  # a MixedPrecision's scaler and device read below
        self._plugin: Precision = plugin
        mixed = isinstance(plugin, MixedPrecision)
        self._scaler = plugin.scaler if mixed else None
        # Backward and the step ran outside the autocast region with automatic optimization.
        # (An autocast object may be entered again once exited.)
        self._outside_autocast = torch.autocast(plugin.device, enabled=False) if mixed else _NULL
        self._unscale = self._scaler is not None and not _optimizer_handles_unscaling(
            self._optimizer
        )
        self.direct = can_step_directly(trainer)
        model = trainer.strategy.model
        # The wrapper that all-reduces gradients in backward (none on one process).
        self._ddp = model if isinstance(model, DistributedDataParallel) else None

    # ------------------------------------------------------------------ step
    def run(
        self,
        module: Any,
        loss: torch.Tensor | None,
        batch_idx: int,
        step: bool | None = None,
    ) -> torch.Tensor | None:
        """Backward for one batch (``loss`` is ``None`` for a skipped batch), then the optimizer
        step if the window ends here (``step``; by default Lightning's own rule, from its batch
        counters). Returns the loss divided by the accumulation count (what Lightning hands to
        ``on_train_batch_end`` as ``outputs``)."""
        accumulate = self.settings.accumulate
        if step is None:
            step = not self._loop._should_accumulate()
        with self._outside_autocast:
            if batch_idx % accumulate == 0:
                self._zero_grad(batch_idx)
            if loss is not None:
                # x / 1 == x exactly, also in backward: one op per step saved.
                if accumulate != 1:
                    loss = loss / accumulate
                if step or self._ddp is None:
                    self._backward(module, loss)
                else:
                    # Not the window's last batch: no all-reduce, the last backward syncs.
                    with self._ddp.no_sync():
                        self._backward(module, loss)
            if step:
                self._step(module, skipped=loss is None)
        return loss

    def _zero_grad(self, batch_idx: int) -> None:
        optimizer = self._optimizer
        if self.direct:
            optimizer.zero_grad()
            return
        trainer = self._trainer
        call._call_callback_hooks(trainer, "on_before_zero_grad", optimizer)
        call._call_lightning_module_hook(trainer, "on_before_zero_grad", optimizer)
        call._call_lightning_module_hook(
            trainer, "optimizer_zero_grad", trainer.current_epoch, batch_idx, optimizer
        )

    def _backward(self, module: Any, loss: torch.Tensor) -> None:
        if not self.direct:
            module.manual_backward(loss)
            return
        if self._ddp is not None:
            # What DDPStrategy's backward does first (inside no_sync() it prepares nothing).
            prepare_for_backward(self._ddp, loss)
        if self._scaler is not None:
            self._scaler.scale(loss).backward()
        else:
            loss.backward()

    def _step(self, module: Any, skipped: bool) -> None:
        scaler = self._scaler
        if skipped and scaler is not None:
            # The scaler has nothing to unscale: no step, but it counts and the hooks before
            # a step run, as with automatic optimization.
            if not self.direct:
                trainer, optimizer = self._trainer, self._optimizer
                call._call_callback_hooks(trainer, "on_before_optimizer_step", optimizer)
                call._call_lightning_module_hook(trainer, "on_before_optimizer_step", optimizer)
            self.count.increment_ready()
            self.count.increment_completed()
        elif self.direct:
            self.count.increment_ready()
            optimizer = self._optimizer
            if scaler is not None:
                if self._unscale:
                    scaler.unscale_(optimizer)
                self.clip(optimizer)
                scaler.step(optimizer)
                scaler.update()
            else:
                self.clip(optimizer)
                optimizer.step()
            self.count.increment_completed()
        else:
            # Lightning counts the step; clipping runs in on_before_optimizer_step (below).
            self._lightning_optimizer.step()
        module.after_optimizer_step()

    def clip(self, optimizer: Any) -> None:
        """Clip the gradients of ``optimizer``'s parameters as the Trainer would."""
        settings = self.settings
        if settings.clip_val:
            algorithm = GradClipAlgorithmType(settings.clip_algorithm)
            self._plugin.clip_gradients(optimizer, settings.clip_val, algorithm)

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        """The module's hook: the Lightning way clips here, after AMP unscaling."""
        if not self.direct:
            self.clip(optimizer)


def plain_single_device(trainer: L.Trainer) -> bool:
    """One process on one device, with Lightning's plain or mixed precision plugin."""
    return type(trainer.strategy) is SingleDeviceStrategy and type(trainer.precision_plugin) in (
        Precision,
        MixedPrecision,
    )


def plain_ddp(trainer: L.Trainer) -> bool:
    """Lightning's ``DDPStrategy`` with plain or mixed precision whose backward only prepares the
    reducer and whose step only steps: no static graph (its first backward is flushed after) and
    no model averaging (it runs after each step)."""
    strategy = trainer.strategy
    return (
        type(strategy) is DDPStrategy
        and type(trainer.precision_plugin) in (Precision, MixedPrecision)
        and not strategy._ddp_kwargs.get("static_graph")
        and not strategy._model_averaging_period
    )


def can_step_directly(trainer: L.Trainer) -> bool:
    """Whether backward and the step may skip Lightning's hooks: :func:`plain_single_device` or
    :func:`plain_ddp`, and no callback that hooks into them."""
    return (plain_single_device(trainer) or plain_ddp(trainer)) and not any(
        overridden_hooks(cb, L.Callback, STEP_HOOKS)
        for cb in trainer.callbacks  # type: ignore[attr-defined]  # Lightning: undeclared Trainer attribute
    )
