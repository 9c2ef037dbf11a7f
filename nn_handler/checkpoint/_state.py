"""Handler → checkpoint dict: the NNHandler keys (SPEC §3.7) and the keys Lightning resumes from."""

from __future__ import annotations

import warnings
from typing import Any

import torch

from .._codecs import refs as _refs
from .._state.run_state import RunState
from .._state.runtime import Runtime
from .._state.setup import Setup
from .._version import __version__
from ..callbacks.base import Callback
from ._format import FORMAT_VERSION
from ._rng import capture_rng, generator_state

__all__ = ["FORMAT_VERSION", "handler_checkpoint", "lightning_keys", "full_checkpoint"]

# Lightning's own module keeps the model under this attribute: ``state_dict`` keys are prefixed.
MODULE_PREFIX = "model."
_reported: set[str] = set()


def _report(problems: list[str]) -> None:
    """One warning per new problem per process (auto-saves would repeat them every epoch)."""
    fresh = [p for p in problems if p not in _reported]
    if not fresh:
        return
    _reported.update(fresh)
    warnings.warn(
        "Checkpoint: " + "; ".join(fresh) + ". To load such a file elsewhere, pass these objects "
        "to NNHandler.load(path, model_class=..., loss_fn=..., metrics={...}).",
        UserWarning,
        stacklevel=caller_level(),
    )


def caller_level() -> int:
    """``stacklevel`` of the first frame outside nn_handler and Lightning (the user's call)."""
    import os
    import sys
    import types

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    adapters = os.path.join(os.path.dirname(package), "adapters")
    frame: types.FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        inside = name.startswith((package, adapters)) or f"{os.sep}lightning{os.sep}" in name
        if not inside:
            return level
        frame, level = frame.f_back, level + 1
    return 2


def _sampler_state(runtime: Runtime, problems: list[str]) -> Any:
    sampler = runtime.sampler
    if sampler is None or not hasattr(sampler, "save"):
        return None
    return _refs.encode(sampler.save(), problems, "sampler state")


def _datamodule_state(runtime: Runtime, problems: list[str]) -> Any:
    datamodule = runtime.datamodule
    if datamodule is None:
        return None
    return _refs.encode(datamodule.state_dict(), problems, "data module state")


def _loader_rng(setup: Setup) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for role, slot in (("train", setup.train_data), ("val", setup.val_data)):
        out[role] = generator_state(slot.loader) if slot and slot.loader is not None else None
    return out


def handler_checkpoint(
    setup: Setup, state: RunState, runtime: Runtime, trainer: Any = None
) -> dict[str, Any]:
    """The NNHandler keys of a checkpoint, all readable by ``torch.load(weights_only=True)``.

    The setup writes its own entries (classes and functions as import paths; what cannot be
    stored, such as a lambda loss, is reported in one warning and stored as ``None``), the run
    state its own; the live objects add their ``state_dict``s. Lightning's own keys
    (``state_dict``, ``loops``...) are not included: see :func:`full_checkpoint`. ``trainer``,
    when given (inside a fit), supplies the step counter.
    """
    problems: list[str] = []
    ckpt: dict[str, Any] = {"checkpoint_format": FORMAT_VERSION}
    ckpt.update(setup.to_checkpoint(problems))
    ckpt.update(state.state_dict())
    ckpt["auto_saver_state"]["last_saved_model"] = state.saver.last_saved
    optimizer, scheduler = runtime.optimizer, runtime.scheduler
    ckpt.update(
        {
            "model_state_dict": runtime.module.state_dict(),
            "optimizer_state_dict": optimizer.state_dict() if optimizer is not None else None,
            "scheduler_state_dict": scheduler.state_dict() if scheduler is not None else None,
            "sampler_state_dict": _sampler_state(runtime, problems),
            "loader_rng_states": _loader_rng(setup),
            "datamodule_state_dict": _datamodule_state(runtime, problems),
            "rng_states": capture_rng(),
            "nn_handler_version": __version__,
            "pytorch_version": str(torch.__version__),
        }
    )
    if trainer is not None:
        ckpt["handler_global_step"] = int(trainer.global_step)
    _report(problems)
    return ckpt


def _counts(n: int, *fields: str) -> dict[str, int]:
    return dict.fromkeys(fields, n)


def _batches(n: int = 0, last: bool | None = False) -> dict[str, Any]:
    fields = ("ready", "started", "processed", "completed")
    out: dict[str, Any] = {"total": _counts(n, *fields), "current": _counts(n, *fields)}
    if last is not None:
        out["is_last_batch"] = last
    return out


def _steps(total: int, *fields: str) -> dict[str, Any]:
    return {"total": _counts(total, *fields), "current": _counts(0, *fields)}


def _loop_template(epochs: int, steps: int) -> dict[str, Any]:
    """Lightning's loop state after ``epochs`` finished epochs and ``steps`` optimizer steps.

    It is what a Trainer holds after ``fit`` ends, so ``Trainer.fit(ckpt_path=...)`` starts the
    next epoch; built without a Trainer so that ``save`` works outside of training.
    """
    fit_loop = {
        "state_dict": {},
        "epoch_loop.state_dict": {"_batches_that_stepped": steps},
        "epoch_loop.batch_progress": _batches(),
        "epoch_loop.scheduler_progress": _steps(0, "ready", "completed"),
        "epoch_loop.automatic_optimization.state_dict": {},
        "epoch_loop.automatic_optimization.optim_progress": {
            "optimizer": {
                "step": _steps(steps, "ready", "completed"),
                "zero_grad": _steps(steps, "ready", "started", "completed"),
            }
        },
        "epoch_loop.manual_optimization.state_dict": {},
        # Both counters: trainer.global_step reads the manual one under manual optimization
        # (train()), the automatic one otherwise (the exported module).
        "epoch_loop.manual_optimization.optim_step_progress": _steps(steps, "ready", "completed"),
        "epoch_loop.val_loop.state_dict": {},
        "epoch_loop.val_loop.batch_progress": _batches(),
        "epoch_progress": _batches(epochs, last=None),
    }
    return {
        "fit_loop": fit_loop,
        "validate_loop": {"state_dict": {}, "batch_progress": _batches()},
        "test_loop": {"state_dict": {}, "batch_progress": _batches()},
        "predict_loop": {"state_dict": {}, "batch_progress": _batches(last=None)},
    }


def lightning_keys(setup: Setup, state: dict[str, Any]) -> dict[str, Any]:
    """What ``Trainer.fit(module, ckpt_path=...)`` needs, built without a Trainer.

    ``state`` is :func:`handler_checkpoint`'s dict; tensors are shared with it, so the file holds
    them once.
    """
    import lightning

    epochs = len(state.get("train_losses") or [])
    steps = int(state["handler_global_step"])
    out: dict[str, Any] = {
        "epoch": epochs,
        "global_step": steps,
        "pytorch-lightning_version": lightning.__version__,
        "state_dict": {MODULE_PREFIX + k: v for k, v in state["model_state_dict"].items()},
        "loops": _loop_template(epochs, steps),
        "callbacks": _lightning_callback_states(setup),
        "optimizer_states": [state["optimizer_state_dict"]]
        if state["optimizer_state_dict"]
        else [],
        "lr_schedulers": (
            [state["scheduler_state_dict"]] if state["scheduler_state_dict"] is not None else []
        ),
    }
    if state.get("grad_scaler_state_dict"):
        out["MixedPrecision"] = state["grad_scaler_state_dict"]
    return out


def _lightning_callback_states(setup: Setup) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cb in setup.callbacks:
        if isinstance(cb, Callback) or not hasattr(cb, "state_dict"):
            continue
        state = cb.state_dict()
        if state:
            out[cb.state_key] = _refs.encode(state, [], "callback")
    return out


def full_checkpoint(setup: Setup, state: RunState, runtime: Runtime) -> dict[str, Any]:
    """Handler keys plus the Lightning keys, for ``save`` outside of a fit."""
    ckpt = handler_checkpoint(setup, state, runtime)
    ckpt.update(lightning_keys(setup, ckpt))
    return ckpt
