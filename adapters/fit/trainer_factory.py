"""``train()`` arguments → ``lightning.Trainer`` arguments."""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.plugins import MixedPrecision

from ..._ops.suggest import did_you_mean
from ..steps.manual_steps import ManualSteps, StepSettings
from .null_profiler import NullProfiler

__all__ = [
    "TrainPlan",
    "accelerator_for",
    "check_trainer_kwargs",
    "continue_from",
    "manual_steps",
    "mirror_step_counters",
    "trainer_arguments",
]

# Arguments the handler itself decides; passing them through trainer_kwargs is an error.
_OWNED = {"max_epochs", "callbacks"}


@dataclass
class TrainPlan:
    """The resolved arguments of one ``train()`` call."""

    epochs: int
    start_epoch: int
    validate_every: int
    gradient_accumulation_steps: int = 1
    gradient_clipping_norm: float | None = None
    use_amp: bool = False
    progress_bar: bool = True
    epoch_train_and_val_pbar: bool = False


def check_trainer_kwargs(kwargs: object) -> None:
    """Raise ``TypeError`` for keys ``lightning.Trainer`` does not take or the handler owns."""
    if not isinstance(kwargs, dict):
        raise TypeError(f"trainer_kwargs must be a dict, got {type(kwargs).__name__}.")
    accepted = set(inspect.signature(L.Trainer.__init__).parameters) - {"self"}
    for key in kwargs:
        if key in _OWNED:
            raise ValueError(
                f"trainer_kwargs[{key!r}] is set by NNHandler.train; use train(epochs=...) and "
                "add_callback(...) instead."
            )
        if key not in accepted:
            hint = did_you_mean(key, accepted)
            raise TypeError(
                f"trainer_kwargs has {key!r}, which lightning.Trainer does not take.{hint}"
            )


def accelerator_for(device: torch.device) -> tuple[str, Any]:
    """``(accelerator, devices)`` for a single-process run on ``device``."""
    if device.type == "cuda":
        return "gpu", [device.index if device.index is not None else 0]
    if device.type == "mps":
        return "mps", 1
    return "cpu", 1


def trainer_arguments(
    plan: TrainPlan,
    device: torch.device,
    callbacks: list[L.Callback],
    loggers: list[Any],
    has_checkpointing: bool,
    root_dir: str,
    scaler: Any = None,
) -> dict[str, Any]:
    """The ``lightning.Trainer`` keyword arguments for ``plan``."""
    accelerator, devices = accelerator_for(device)
    precision = "32-true"
    if plan.use_amp:
        if device.type == "cuda":
            precision = "16-mixed"
        else:
            warnings.warn(
                f"use_amp=True needs a CUDA device; training in full precision on {device.type}.",
                UserWarning,
                stacklevel=3,
            )
    callbacks = list(callbacks)
    args: dict[str, Any] = {
        "accelerator": accelerator,
        "devices": devices,
        "max_epochs": plan.start_epoch + plan.epochs,
        "precision": precision,
        "accumulate_grad_batches": plan.gradient_accumulation_steps,
        "gradient_clip_val": plan.gradient_clipping_norm,
        "gradient_clip_algorithm": "norm" if plan.gradient_clipping_norm else None,
        "check_val_every_n_epoch": max(plan.validate_every, 1),
        "num_sanity_val_steps": 0,
        # Lightning refuses a progress bar callback with the flag off; the callbacks
        # (fit/callbacks.py) hold the handler's bar when one is asked for, or the user's.
        "enable_progress_bar": any(isinstance(c, ProgressBar) for c in callbacks),
        "enable_model_summary": False,
        "enable_checkpointing": has_checkpointing,
        "logger": loggers if loggers else False,
        "callbacks": callbacks,
        "default_root_dir": root_dir,
    }
    if precision == "16-mixed" and scaler is not None:
        # The handler's own scaler, so its state survives from one train() call to the next.
        args["plugins"] = [MixedPrecision("16-mixed", "cuda", scaler=scaler)]
        del args["precision"]
    return args


def manual_steps(args: dict[str, Any]) -> ManualSteps:
    """Take accumulation and clipping out of the final Trainer arguments ``args`` (the module
    does them, with manual optimization) and give the Trainer the no-cost profiler unless the
    user chose one."""
    steps = ManualSteps(StepSettings.take_from(args))
    if args.get("profiler") is None:
        args["profiler"] = NullProfiler()
    return steps


def continue_from(trainer: L.Trainer, epochs_done: int, steps_done: int) -> None:
    """Make a fresh Trainer count epochs and steps on from an earlier run.

    Epoch numbers drive validation frequency, the sampler epoch (shuffling) and checkpoint names,
    so they must continue across ``train()`` calls exactly as in one long run.
    """
    progress = trainer.fit_loop.epoch_progress
    for counter in (progress.total, progress.current):
        # Typed as the base tracker; epoch_progress holds _ProcessedTrackers (all four counters).
        counter.ready = counter.started = counter.processed = counter.completed = epochs_done  # type: ignore[attr-defined]
    loop = trainer.fit_loop.epoch_loop
    loop._batches_that_stepped = steps_done
    step = loop.automatic_optimization.optim_progress.optimizer.step
    step.total.ready = step.total.completed = steps_done
    zero_grad = loop.automatic_optimization.optim_progress.optimizer.zero_grad
    zero_grad.total.ready = zero_grad.total.started = zero_grad.total.completed = steps_done  # type: ignore[attr-defined]  # a _StartedTracker
    # trainer.global_step reads this counter when the module uses manual optimization.
    manual = loop.manual_optimization.optim_step_progress
    manual.total.ready = manual.total.completed = steps_done
    if epochs_done > 0:
        # As after a checkpoint restore: the train iterator created at fit start serves the first
        # epoch. Otherwise Lightning creates it twice, drawing one more seed from the global RNG
        # than a single long run does, and train(2) + train(2) would differ from train(4).
        trainer.fit_loop._resuming_from_checkpoint = True


def mirror_step_counters(loops: dict[str, Any], steps: int) -> None:
    """Give a dumped loop state ``steps`` optimizer steps in both step counters.

    ``trainer.global_step`` reads the manual-optimization counter for ``train()``'s module and
    the automatic one for the exported module; a file either writes must resume the other.
    """
    fit = loops.get("fit_loop", {})
    optimizer = fit.get("epoch_loop.automatic_optimization.optim_progress", {}).get("optimizer")
    manual = fit.get("epoch_loop.manual_optimization.optim_step_progress")
    if optimizer is None or manual is None:
        return
    optimizer["step"]["total"].update(ready=steps, completed=steps)
    optimizer["zero_grad"]["total"].update(ready=steps, started=steps, completed=steps)
    manual["total"].update(ready=steps, completed=steps)
