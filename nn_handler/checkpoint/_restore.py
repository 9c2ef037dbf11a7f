"""Checkpoint dict → a working NNHandler (``NNHandler.load``) or weights only."""

from __future__ import annotations

import inspect
import os
import textwrap
import types
import warnings
from typing import Any

import torch
from torch import nn

from .._devices import resolve_device
from ..callbacks.base import Callback
from ..enums import ModelType
from . import _read, _refs
from ._legacy import read_file_or_legacy
from ._rng import restore_rng as _restore_rng_states
from ._weights import load_weights

__all__ = [
    "initialize_from_checkpoint",
    "load_handler",
    "read_checkpoint",
    "restore_handler_extras",
]


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=4)


# ----------------------------------------------------------------- reading
def read_checkpoint(
    path: str, map_location: Any = "cpu", allow_legacy_pickle: bool = False
) -> tuple[dict[str, Any], str]:
    """``(checkpoint, file)`` for a handler checkpoint file or the newest one in a directory.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: the file is not an NNHandler checkpoint (the message says what it is).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Checkpoint not found: {path!r}.")
    if os.path.isdir(path):
        path = _read.newest_in_directory(path)
    try:
        ckpt = _read.read_file(path, map_location)
    except ValueError:
        if not allow_legacy_pickle:
            raise
        from ._legacy import read_legacy

        ckpt = read_legacy(path, map_location)
    if not _read.is_handler_checkpoint(ckpt):
        raise ValueError(
            f"{path!r} is not an NNHandler checkpoint: it is {_read.describe(ckpt)}. Load its "
            "weights with NNHandler.initialize_from_checkpoint(path, ModelClass, ...)."
        )
    return ckpt, path


def _target_device(device: Any, ckpt: dict[str, Any]) -> torch.device:
    if device is not None:
        return resolve_device(device)
    saved = str(ckpt.get("device") or "cpu")
    if saved.startswith("cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


# -------------------------------------------------------------- class refs
def _is_module_class(obj: Any) -> bool:
    return inspect.isclass(obj) and issubclass(obj, nn.Module)


def _is_optimizer_class(obj: Any) -> bool:
    return inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer)


def _is_scheduler_class(obj: Any) -> bool:
    bases = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    return inspect.isclass(obj) and issubclass(obj, bases)


def _is_sde_class(obj: Any) -> bool:
    # SDEs are duck-typed: the class must at least define the methods training and sampling use.
    return inspect.isclass(obj) and all(
        callable(getattr(obj, m, None)) for m in ("marginal_prob", "sigma", "prior")
    )


def _is_sampler_class(obj: Any) -> bool:
    return inspect.isclass(obj) and callable(getattr(obj, "sample", None))


def _is_callback_class(obj: Any) -> bool:
    from lightning.pytorch.callbacks import Callback as LightningCallback

    return inspect.isclass(obj) and issubclass(obj, (Callback, LightningCallback))


def _class(value: Any, what: str, check) -> Any:
    """A stored class: an import path (our files) or the class itself (legacy pickles)."""
    if value is None:
        return None
    if isinstance(value, str):
        return _refs.resolve(value, what, check)
    if not check(value):
        raise _refs.Unresolvable(f"the {what} {value!r} is not a valid {what}")
    return value


def _value(value: Any, where: str) -> Any:
    return _refs.decode(value, where)


# ----------------------------------------------------------------- parts
def _model_class(ckpt: dict[str, Any], override: Any, trust_model_code: bool) -> type:
    if override is not None:
        if not _is_module_class(override):
            raise TypeError(f"model_class must be an nn.Module subclass, got {override!r}.")
        return override
    stored = ckpt.get("model_class")
    try:
        cls = _class(stored, "model class", _is_module_class)
    except _refs.Unresolvable as err:
        cls, reason = None, str(err)
    else:
        reason = "the file stores no model class (it had no import path when saved)"
    if cls is not None:
        return cls
    if trust_model_code and ckpt.get("model_code"):
        return _class_from_code(ckpt["model_code"], stored)
    raise ValueError(
        f"Cannot rebuild the model: {reason}. Pass the class: NNHandler.load(path, "
        "model_class=YourModel)."
    )


def _class_from_code(code: str, stored: Any) -> type:
    """Execute saved model source (only with ``trust_model_code=True``) and take its class."""
    namespace = types.ModuleType("nn_handler_saved_model_code")
    namespace.__dict__.update(torch=torch, nn=nn, F=torch.nn.functional)
    exec(compile(textwrap.dedent(code), "<saved model code>", "exec"), namespace.__dict__)  # noqa: S102 - opt-in
    name = str(stored).rpartition(":")[2].rpartition(".")[2] if stored else None
    classes = [
        v
        for v in vars(namespace).values()
        if _is_module_class(v) and v.__module__ == namespace.__name__
    ]
    for cls in classes:
        if name is None or cls.__name__ == name:
            return cls
    raise ValueError("The saved model code defines no nn.Module class.")


def _restore_optimization(handler: Any, ckpt: dict[str, Any], skip_opt: bool, skip_sched: bool):
    try:
        opt_cls = _class(ckpt.get("optimizer_class"), "optimizer class", _is_optimizer_class)
        sched_cls = _class(ckpt.get("scheduler_class"), "scheduler class", _is_scheduler_class)
        opt_kwargs = _value(ckpt.get("optimizer_kwargs") or {}, "optimizer_kwargs")
        sched_kwargs = _value(ckpt.get("scheduler_kwargs") or {}, "scheduler_kwargs")
    except _refs.Unresolvable as err:
        _warn(f"Optimizer/scheduler not restored: {err}. Call set_optimizer/set_scheduler.")
        return
    if skip_opt or opt_cls is None:
        return
    handler.set_optimizer(opt_cls, **opt_kwargs)
    # The scheduler is built before the optimizer state is loaded: building it resets the lr.
    if sched_cls is not None and not skip_sched:
        handler.set_scheduler(sched_cls, **sched_kwargs)
    if ckpt.get("optimizer_state_dict"):
        try:
            handler._optimizer.load_state_dict(ckpt["optimizer_state_dict"])
        except (ValueError, KeyError, RuntimeError) as err:
            _warn(f"Optimizer state not restored ({err}); the optimizer starts fresh.")
    if handler._scheduler is not None and ckpt.get("scheduler_state_dict") is not None:
        handler._scheduler.load_state_dict(ckpt["scheduler_state_dict"])


def _restore_loss_and_metrics(handler: Any, ckpt: dict[str, Any], loss_fn: Any, metrics: Any):
    kwargs = _value(ckpt.get("loss_fn_kwargs") or {}, "loss_fn_kwargs")
    pass_epoch = bool(ckpt.get("pass_epoch_to_loss", False))
    if loss_fn is None and ckpt.get("loss_fn") is not None:
        try:
            loss_fn = _value(ckpt["loss_fn"], "loss_fn")
        except _refs.Unresolvable as err:
            _warn(f"Loss not restored: {err}. Pass loss_fn= to load or call set_loss_fn(...).")
    elif loss_fn is None and ckpt.get("loss_fn_unstored"):
        _warn(
            "The checkpoint stores no loss function (it had no import path when saved). Pass "
            "loss_fn= to NNHandler.load or call set_loss_fn(...) before training."
        )
    if loss_fn is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the epoch-argument warning was given when it was set
            handler.set_loss_fn(loss_fn, pass_epoch, **kwargs)
    supplied = dict(metrics or {})
    for name, stored in (ckpt.get("metrics") or {}).items():
        if name in supplied:
            continue
        try:
            supplied[name] = _value(stored, f"metric {name!r}")
        except _refs.Unresolvable as err:
            _warn(f"Metric {name!r} not restored: {err}. Pass metrics={{{name!r}: fn}} to load.")
    for name, fn in supplied.items():
        handler.add_metric(name, fn)


def _restore_ema_and_scaler(handler: Any, ckpt: dict[str, Any], skip_ema: bool) -> None:
    decay = float(ckpt.get("ema_decay") or 0.0)
    state = ckpt.get("ema_state_dict")
    if not skip_ema and decay > 0 and state:
        from .._training import _setup_ema

        _setup_ema(handler, decay)
        try:
            handler._ema.load_state_dict(state)
        except (RuntimeError, KeyError) as err:
            _warn(f"EMA state not restored ({err}); the average restarts from the weights.")
            handler._ema = None
            handler._ema_decay = 0.0
    scaler = ckpt.get("grad_scaler_state_dict")
    if scaler and torch.cuda.is_available() and handler._device.type == "cuda":
        handler._grad_scaler = torch.amp.GradScaler("cuda")
        handler._grad_scaler.load_state_dict(scaler)


def _restore_generative(handler: Any, ckpt: dict[str, Any]) -> None:
    try:
        sde_cls = _class(ckpt.get("sde_class"), "SDE class", _is_sde_class)
        sampler_cls = _class(ckpt.get("sampler_class"), "sampler class", _is_sampler_class)
        sde_kwargs = _value(ckpt.get("sde_kwargs") or {}, "sde_kwargs")
        sampler_kwargs = _value(ckpt.get("sampler_kwargs") or {}, "sampler_kwargs")
    except _refs.Unresolvable as err:
        _warn(f"SDE/sampler not restored: {err}. Call set_sde/set_sampler.")
        return
    if sde_cls is not None:
        handler.set_sde(sde_cls, **sde_kwargs)
    if sampler_cls is not None:
        handler.set_sampler(sampler_cls, **sampler_kwargs)
        state = ckpt.get("sampler_state_dict")
        if state is not None and handler._sampler is not None:
            handler._sampler.load(_value(state, "sampler_state_dict"))


def _build_callback(cls: type, kwargs: dict[str, Any]) -> Any:
    """Rebuild with the saved constructor arguments; fall back to defaults if they no longer fit."""
    try:
        return cls(**kwargs)
    except TypeError:
        return cls()


def _restore_callbacks(handler: Any, ckpt: dict[str, Any], supplied: list[Any]) -> None:
    classes = ckpt.get("callback_classes") or {}
    states = ckpt.get("callback_states") or {}
    init = ckpt.get("callback_kwargs") or {}
    given: dict[str, list[Any]] = {}
    for cb in supplied:
        given.setdefault(type(cb).__name__, []).append(cb)
    unmatched = []
    for key in list(classes) + [k for k in states if k not in classes]:
        name = key.split("#", 1)[0]
        state = _value(states.get(key) or {}, f"callback {key} state")
        if given.get(name):
            cb = given[name].pop(0)
        else:
            try:
                cls = _class(classes.get(key), f"callback class {key}", _is_callback_class)
                if cls is None:
                    raise _refs.Unresolvable("no class stored")
                cb = _build_callback(cls, _value(init.get(key) or {}, key))
            except (_refs.Unresolvable, TypeError) as err:
                unmatched.append(f"{key} ({err})")
                continue
        if state:
            cb.load_state_dict(state)
        handler.add_callback(cb)
    for rest in given.values():
        for cb in rest:
            handler.add_callback(cb)
    if unmatched:
        _warn(
            "Saved callback states with no matching callback were not restored: "
            + "; ".join(unmatched)
            + ". Pass the callbacks to NNHandler.load(path, callbacks=[...]) to restore them."
        )
    lightning = ckpt.get("lightning_callback_classes") or []
    if lightning:
        _warn(
            "Lightning callbacks are not re-created by load: "
            + ", ".join(lightning)
            + ". Add them again with add_callback(...)."
        )


# ------------------------------------------------------------------- load
def load_handler(
    cls: type,
    path: str,
    *,
    device: Any = None,
    strict_load: bool = False,
    skip_optimizer: bool = False,
    skip_scheduler: bool = False,
    skip_history: bool = False,
    skip_callbacks: bool = False,
    skip_sampler_sde: bool = False,
    skip_ema: bool = False,
    model_class: type | None = None,
    model_kwargs: dict[str, Any] | None = None,
    loss_fn: Any = None,
    metrics: dict[str, Any] | None = None,
    callbacks: list[Any] | None = None,
    allow_legacy_pickle: bool = False,
    trust_model_code: bool = False,
    restore_rng: bool = True,
    **handler_kwargs: Any,
) -> Any:
    """Rebuild a handler from a checkpoint; see ``docs/checkpointing.md`` for every option."""
    # Read onto the CPU: the handler's own device (per rank under DDP) is where loading copies
    # every tensor, so nothing lands on a device this process does not use.
    ckpt, file = read_checkpoint(path, "cpu", allow_legacy_pickle)
    target = _target_device(device, ckpt)

    model_cls = _model_class(ckpt, model_class, trust_model_code)
    try:
        kwargs = _value(ckpt.get("model_kwargs") or {}, "model_kwargs")
    except _refs.Unresolvable as err:
        if model_kwargs is None:
            raise ValueError(
                f"Cannot rebuild the model: {err}. Pass model_kwargs={{...}}."
            ) from None
        kwargs = {}
    kwargs.update(model_kwargs or {})
    model_type = ModelType.parse(_model_type_value(ckpt.get("model_type")))
    handler_kwargs.setdefault("save_model_code", bool(ckpt.get("save_model_code", False)))
    ddp_kwargs = ckpt.get("ddp_kwargs")
    if ddp_kwargs and "ddp_kwargs" not in handler_kwargs:
        handler_kwargs["ddp_kwargs"] = _value(ddp_kwargs, "ddp_kwargs")
    handler = cls(model_cls, device=target, model_type=model_type, **handler_kwargs, **kwargs)
    if ckpt.get("model_code") and handler._model_code is None:
        handler._model_code = ckpt["model_code"]

    load_weights(
        handler._module,
        ckpt["model_state_dict"],
        strict_load,
        repr(file),
        _saved_class_name(ckpt.get("model_class")),
    )
    _restore_optimization(handler, ckpt, skip_optimizer, skip_scheduler)
    _restore_loss_and_metrics(handler, ckpt, loss_fn, metrics)
    if not skip_history:
        handler._history.load_state_dict(ckpt)
        handler._global_step = int(ckpt.get("global_step", ckpt.get("handler_global_step", 0)) or 0)
    if ckpt.get("auto_saver_state"):
        handler._auto_save.load_state_dict(ckpt["auto_saver_state"])
    _restore_ema_and_scaler(handler, ckpt, skip_ema)
    if not skip_sampler_sde:
        _restore_generative(handler, ckpt)
    if not skip_callbacks:
        _restore_callbacks(handler, ckpt, list(callbacks or []))
    elif callbacks:
        for cb in callbacks:
            handler.add_callback(cb)
    handler._seed = ckpt.get("seed")
    handler._saved_loader_kwargs = {
        "train": ckpt.get("train_loader_kwargs") or {},
        "val": ckpt.get("val_loader_kwargs") or {},
    }
    handler._pending_loader_rng = dict(ckpt.get("loader_rng_states") or {})
    if restore_rng and ckpt.get("rng_states"):
        _restore_rng_states(ckpt["rng_states"])
    handler._logger.info("Loaded checkpoint %s.", file)
    return handler


def _model_type_value(value: Any) -> Any:
    if value is None:
        return ModelType.CLASSIFICATION
    return getattr(value, "value", value)


def _saved_class_name(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else getattr(value, "__qualname__", str(value))


# ---------------------------------------------------------- weights only
def initialize_from_checkpoint(
    path: str,
    model_class: type,
    *,
    model_type: Any = None,
    device: Any = None,
    strict_load: bool = True,
    allow_legacy_pickle: bool = False,
    **model_kwargs: Any,
) -> Any:
    """A new NNHandler for ``model_class(**model_kwargs)`` with weights from ``path``.

    ``path`` may be an NNHandler checkpoint, a Lightning checkpoint or a bare ``state_dict``;
    nothing but the weights is restored. ``allow_legacy_pickle=True`` also reads files pickled
    by the original NNHandler (runs code from the file: trusted files only).
    """
    from ..handler import NNHandler

    if not _is_module_class(model_class):
        raise TypeError(f"model_class must be an nn.Module subclass, got {model_class!r}.")
    path = os.fspath(path)
    target = resolve_device(device) if device is not None else torch.device("cpu")
    obj = read_file_or_legacy(path, "cpu", allow_legacy_pickle)
    if _read.is_handler_checkpoint(obj):
        state, saved = obj["model_state_dict"], _saved_class_name(obj.get("model_class"))
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        state, saved = obj["state_dict"], None
    elif _read.is_state_dict(obj):
        state, saved = obj, None
    else:
        raise ValueError(
            f"{path!r} holds no model weights that can be read: it is {_read.describe(obj)}."
        )
    handler = NNHandler(
        model_class,
        device=target,
        model_type=model_type if model_type is not None else ModelType.CLASSIFICATION,
        **model_kwargs,
    )
    load_weights(handler._module, state, strict_load, repr(path), saved)
    return handler


# ------------------------------------------------------- Lightning resume
def restore_handler_extras(handler: Any, ckpt: dict[str, Any], restore_rng: bool = True) -> None:
    """Put the handler-only parts of ``ckpt`` into an existing handler.

    For a ``Trainer.fit(module, ckpt_path=...)`` resume of the exported module, where Lightning
    restores weights, optimizer, scheduler and loops itself: this restores the history, the step
    counter, the auto-saver state, the states of the handler's native callbacks (matched by class
    name), the EMA weights and, unless ``restore_rng=False``, the generator states.
    """
    handler._history.load_state_dict(ckpt)
    handler._global_step = int(ckpt.get("global_step", ckpt.get("handler_global_step", 0)) or 0)
    if ckpt.get("auto_saver_state"):
        handler._auto_save.load_state_dict(ckpt["auto_saver_state"])
    states = dict(ckpt.get("callback_states") or {})
    for cb in handler._callbacks:
        if not isinstance(cb, Callback):
            continue
        key = next((k for k in states if k.split("#", 1)[0] == type(cb).__name__), None)
        if key is not None:
            cb.load_state_dict(_value(states.pop(key), f"callback {key} state"))
    if handler._ema is not None and ckpt.get("ema_state_dict"):
        handler._ema.load_state_dict(ckpt["ema_state_dict"])
    if restore_rng and ckpt.get("rng_states"):
        _restore_rng_states(ckpt["rng_states"])
