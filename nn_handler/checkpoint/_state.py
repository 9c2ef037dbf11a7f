"""Handler → checkpoint dict: the NNHandler keys (SPEC §3.7) and the keys Lightning resumes from."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import torch

from .._version import __version__
from ..callbacks.base import Callback
from . import _refs
from ._rng import capture_rng, generator_state

if TYPE_CHECKING:  # pragma: no cover
    from ..handler import NNHandler

__all__ = ["FORMAT_VERSION", "handler_checkpoint", "lightning_keys", "full_checkpoint"]

FORMAT_VERSION = 1
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
        stacklevel=_caller_level(),
    )


def _caller_level() -> int:
    """``stacklevel`` of the first frame outside nn_handler and Lightning (the user's call)."""
    import os
    import sys

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    adapters = os.path.join(os.path.dirname(package), "adapters")
    frame, level = sys._getframe(1), 1
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        inside = name.startswith((package, adapters)) or f"{os.sep}lightning{os.sep}" in name
        if not inside:
            return level
        frame, level = frame.f_back, level + 1
    return 2


def _class_path(cls: Any, problems: list[str], where: str) -> str | None:
    if cls is None:
        return None
    try:
        path = _refs.import_path(cls)
    except _refs.Unresolvable as err:
        problems.append(f"{where}: {err}; stored as None")
        return None
    _refs.note_main(cls, problems, where)
    return path


def _callback_entries(handler: NNHandler, problems: list[str]) -> dict[str, Any]:
    classes: dict[str, Any] = {}
    states: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    lightning: list[str] = []
    for cb in handler._callbacks:
        if not isinstance(cb, Callback):
            path = _class_path(type(cb), [], "callback")
            lightning.append(path or type(cb).__qualname__)
            continue
        name = type(cb).__name__
        key, i = name, 1
        while key in classes:
            key, i = f"{name}#{i}", i + 1
        where = f"callback {key}"
        classes[key] = _class_path(type(cb), problems, where)
        try:
            state = cb.state_dict()
        except Exception as err:  # noqa: BLE001 - a broken callback must not lose the checkpoint
            problems.append(f"{where}: state_dict() raised {type(err).__name__}: {err}")
            state = {}
        states[key] = _refs.encode(state or {}, problems, f"{where} state")
        kwargs[key] = _refs.encode(_refs.constructor_kwargs(cb), [], where)
    return {
        "callback_classes": classes,
        "callback_states": states,
        "callback_kwargs": kwargs,
        "lightning_callback_classes": lightning,
    }


def _loss_entries(handler: NNHandler, problems: list[str]) -> dict[str, Any]:
    spec = handler._loss
    if spec is None:
        return {"loss_fn": None, "loss_fn_kwargs": {}, "pass_epoch_to_loss": False}
    loss = _refs.encode(spec.fn, problems, "loss_fn")
    if _refs.is_marker(loss, _refs.MISSING):
        problems[-1] += "; stored as None"
        loss = None
    return {
        "loss_fn": loss,
        "loss_fn_unstored": loss is None,
        "loss_fn_kwargs": _refs.encode(dict(spec.kwargs), problems, "loss_fn_kwargs"),
        "pass_epoch_to_loss": bool(spec.pass_epoch),
    }


def _loader_entries(handler: NNHandler) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rng: dict[str, Any] = {}
    for role, slot in (("train", handler._train_data), ("val", handler._val_data)):
        # Loader kwargs are a record (datasets are never stored): encode them without warnings.
        out[f"{role}_loader_kwargs"] = _refs.encode(
            dict(slot.loader_kwargs) if slot else {}, [], role
        )
        rng[role] = generator_state(slot.loader) if slot and slot.loader is not None else None
    out["loader_rng_states"] = rng
    return out


def _generative_entries(handler: NNHandler, problems: list[str]) -> dict[str, Any]:
    sampler_state = None
    if handler._sampler is not None and hasattr(handler._sampler, "save"):
        sampler_state = _refs.encode(handler._sampler.save(), problems, "sampler state")
    return {
        "sde_class": _class_path(handler._sde_class, problems, "sde_class"),
        "sde_kwargs": _refs.encode(dict(handler._sde_kwargs), problems, "sde_kwargs"),
        "sampler_class": _class_path(handler._sampler_class, problems, "sampler_class"),
        "sampler_kwargs": _refs.encode(dict(handler._sampler_kwargs), problems, "sampler_kwargs"),
        "sampler_state_dict": sampler_state,
    }


def handler_checkpoint(handler: NNHandler, trainer: Any = None) -> dict[str, Any]:
    """The NNHandler keys of a checkpoint, all readable by ``torch.load(weights_only=True)``.

    Classes and functions are stored as import paths. What cannot be stored (a lambda loss, a
    local class) is reported in one warning and stored as ``None``; pass it when loading.
    Lightning's own keys (``state_dict``, ``loops``...) are not included: see
    :func:`full_checkpoint`. ``trainer``, when given (inside a fit), supplies the step counter.
    """
    problems: list[str] = []
    scheduler = handler._scheduler
    ema = handler._ema
    scaler = handler._grad_scaler
    history = handler._history.state_dict()
    state: dict[str, Any] = {
        "checkpoint_format": FORMAT_VERSION,
        "model_state_dict": handler._module.state_dict(),
        "optimizer_state_dict": handler._optimizer.state_dict() if handler._optimizer else None,
        "scheduler_state_dict": scheduler.state_dict() if scheduler is not None else None,
        "grad_scaler_state_dict": scaler.state_dict() if scaler is not None else None,
        "model_class": _class_path(handler._model_class, problems, "model_class"),
        "model_kwargs": _refs.encode(dict(handler._model_kwargs), problems, "model_kwargs"),
        "model_type": handler._model_type.value,
        "save_model_code": bool(handler._save_model_code),
        "model_code": handler._model_code,
        "optimizer_class": _class_path(handler._optimizer_class, problems, "optimizer_class"),
        "optimizer_kwargs": _refs.encode(
            dict(handler._optimizer_kwargs), problems, "optimizer_kwargs"
        ),
        "scheduler_class": _class_path(handler._scheduler_class, problems, "scheduler_class"),
        "scheduler_kwargs": _refs.encode(
            dict(handler._scheduler_kwargs), problems, "scheduler_kwargs"
        ),
        **_loss_entries(handler, problems),
        "metrics": {
            name: _refs.encode(fn, problems, f"metric {name!r}")
            for name, fn in handler._metrics.items()
        },
        "seed": handler._seed,
        **_loader_entries(handler),
        **history,
        "auto_saver_state": handler._auto_save.state_dict(),
        "ema_state_dict": ema.state_dict() if ema is not None else None,
        "ema_decay": float(handler._ema_decay),
        **_generative_entries(handler, problems),
        **_callback_entries(handler, problems),
        "ddp_kwargs": _refs.encode(dict(handler._ddp_kwargs), problems, "ddp_kwargs"),
        "device": str(handler._device),
        "handler_global_step": int(
            trainer.global_step if trainer is not None else handler._global_step
        ),
        "rng_states": capture_rng(),
        "nn_handler_version": __version__,
        "pytorch_version": str(torch.__version__),
    }
    _report(problems)
    return state


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
        "epoch_loop.manual_optimization.optim_step_progress": _steps(0, "ready", "completed"),
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


def lightning_keys(handler: NNHandler, state: dict[str, Any]) -> dict[str, Any]:
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
        "callbacks": _lightning_callback_states(handler),
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


def _lightning_callback_states(handler: NNHandler) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cb in handler._callbacks:
        if isinstance(cb, Callback) or not hasattr(cb, "state_dict"):
            continue
        state = cb.state_dict()
        if state:
            out[cb.state_key] = _refs.encode(state, [], "callback")
    return out


def full_checkpoint(handler: NNHandler) -> dict[str, Any]:
    """Handler keys plus the Lightning keys, for ``save`` outside of a fit."""
    state = handler_checkpoint(handler)
    state.update(lightning_keys(handler, state))
    return state
