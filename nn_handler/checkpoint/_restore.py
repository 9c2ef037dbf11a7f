"""Checkpoint dict → a working NNHandler (``NNHandler.load``) or weights only.

The file's setup entries are read by :meth:`Setup.from_checkpoint` (one decoder, with the
safe-loading rule), the handler is built from that setup, then the states are loaded into the
built objects and the run state.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from .._codecs import refs as _refs
from .._codecs.safe_modules import loading_with
from .._env import storage as _storage
from .._env.devices import resolve_device
from .._state.run_state import RunState
from .._state.setup import ReadContext, Setup
from ..callbacks.base import Callback
from ..enums import ModelType
from . import _multi, _read
from ._legacy import read_legacy
from ._rng import restore_rng as _restore_rng_states
from ._state import caller_level
from ._weights import load_weights

if TYPE_CHECKING:
    from ..handler import NNHandler

__all__ = [
    "initialize_from_checkpoint",
    "load_handler",
    "read_checkpoint",
    "restore_handler_extras",
]


# Set on a dict read through the legacy-pickle opt-in: its objects were already unpickled.
LEGACY_MARK = "__nn_handler_legacy_pickle__"


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=caller_level())


# ----------------------------------------------------------------- reading
def _without_mark(obj: Any) -> Any:
    """``obj`` without the legacy mark: only the legacy reader sets it, never a file's own key
    (a file holding it would otherwise be trusted)."""
    if isinstance(obj, dict):
        obj.pop(LEGACY_MARK, None)
    return obj


def _read_object(
    path: str, map_location: Any, allow_legacy_pickle: bool, trust: bool = False
) -> Any:
    """What a checkpoint file (or multi-file directory) holds, read safely.

    With ``allow_legacy_pickle`` a file that needs code to unpickle is read by the original
    NNHandler's pickle reader instead (the user's opt-in), and marked as such. A trusted file
    (``trust``) skips the check of its pickle's globals: ``torch.load(weights_only=True)`` alone.
    """
    local = _storage.local_path(path)
    if local is None:  # another file system: the same reading, on a downloaded copy
        with _storage.local_copy(path) as copy, _storage.naming(path, copy):
            return _read_object(copy, map_location, allow_legacy_pickle)
    path = local
    if _multi.is_multi_file(path):  # a directory that is one checkpoint, not a folder of them
        return _without_mark(_multi.read_multi_file(path, map_location, scan=not trust))
    try:
        return _without_mark(_read.read_file(path, map_location, scan=not trust))
    except _read.NeedsCode:
        # Only a file that needs code: a damaged or newer file keeps its own error.
        if not allow_legacy_pickle:
            raise
        obj = read_legacy(path, map_location)
        if isinstance(obj, dict):
            obj[LEGACY_MARK] = True  # the user opted in to run this file's pickle
        return obj


def read_checkpoint(
    path: str, map_location: Any = "cpu", allow_legacy_pickle: bool = False, trust: bool = False
) -> tuple[dict[str, Any], str]:
    """``(checkpoint, file)`` for a handler checkpoint file or the newest one in a directory.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: the file is not an NNHandler checkpoint (the message says what it is).
    """
    path = os.fspath(path)
    local = _storage.local_path(path)
    if local is None:  # another file system: the same reading, on a downloaded copy
        with _storage.local_copy(path) as copy, _storage.naming(path, copy):
            ckpt, file = read_checkpoint(copy, map_location, allow_legacy_pickle)
        if file != copy:  # the newest file of a folder
            path = path.rstrip("/") + "/" + os.path.relpath(file, copy).replace(os.sep, "/")
        return ckpt, path
    path = local
    if not os.path.exists(path):
        raise FileNotFoundError(f"Checkpoint not found: {path!r}.")
    if os.path.isdir(path) and not _multi.is_multi_file(path):
        path = _read.newest_in_directory(path)
    ckpt = _read_object(path, map_location, allow_legacy_pickle, trust)
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


def _skipped(
    skip_optimizer: bool, skip_scheduler: bool, skip_callbacks: bool, skip_sampler_sde: bool
) -> frozenset[str]:
    skip = set()
    if skip_optimizer:
        skip |= {"optimizer", "scheduler"}
    if skip_scheduler:
        skip.add("scheduler")
    if skip_callbacks:
        skip.add("callbacks")
    if skip_sampler_sde:
        skip |= {"sde", "sampler"}
    return frozenset(skip)


# ------------------------------------------------------------------ states
def _load_optimization_states(handler: Any, ckpt: dict[str, Any]) -> None:
    if handler.optimizer is not None and ckpt.get("optimizer_state_dict"):
        try:
            handler.optimizer.load_state_dict(ckpt["optimizer_state_dict"])
        except (ValueError, KeyError, RuntimeError) as err:
            _warn(f"Optimizer state not restored ({err}); the optimizer starts fresh.")
    if handler.scheduler is not None and ckpt.get("scheduler_state_dict") is not None:
        handler.scheduler.load_state_dict(ckpt["scheduler_state_dict"])


def _load_ema_and_scaler(
    state: RunState, module: torch.nn.Module, device: torch.device, ckpt: dict[str, Any]
) -> None:
    decay = float(ckpt.get("ema_decay") or 0.0)
    ema_state = ckpt.get("ema_state_dict")
    if decay > 0 and ema_state:
        state.ensure_ema(module, decay, device)
        ema = state.ema
        assert ema is not None  # a positive decay made one
        try:
            ema.load_state_dict(ema_state)
        except (RuntimeError, KeyError) as err:
            _warn(f"EMA state not restored ({err}); the average restarts from the weights.")
            state.drop_ema()
    scaler = ckpt.get("grad_scaler_state_dict")
    if scaler and torch.cuda.is_available() and device.type == "cuda":
        grad_scaler = state.ensure_grad_scaler(device)
        if grad_scaler is not None:  # always on a CUDA device
            grad_scaler.load_state_dict(scaler)


def _load_sampler_state(handler: Any, ckpt: dict[str, Any], trust: bool) -> None:
    stored = ckpt.get("sampler_state_dict")
    if stored is None or handler.sampler is None:
        return
    try:
        handler.sampler.load(_refs.decode(stored, "sampler_state_dict", trust))
    except _refs.Unresolvable as err:
        _warn(f"Sampler state not restored: {err}.")


# ------------------------------------------------------------------- load
# Setup fields and the checkpoint entries each one reads (error messages name the entries).
_COMPONENT_KEYS = {
    "model": "model_class, model_kwargs",
    "optimizer": "optimizer_class, optimizer_kwargs",
    "scheduler": "scheduler_class, scheduler_kwargs",
    "sde": "sde_class, sde_kwargs",
    "sampler": "sampler_class, sampler_kwargs",
}
_HISTORY_KEYS = (
    "train_losses, val_losses, val_epochs, train_metrics_history, val_metrics_history, "
    "global_step, handler_global_step"
)
_FIELD_KEYS = {
    **_COMPONENT_KEYS,
    "loss": "loss_fn, loss_fn_kwargs, pass_epoch_to_loss",
    "callbacks": "callback_classes, callback_kwargs, callback_states, lightning_callback_classes",
    "auto_save": "auto_saver_state",
    "training": "training_options",
    "train_data": "train_loader_kwargs, train_dataloader_type",
    "val_data": "val_loader_kwargs, val_dataloader_type",
}


@contextlib.contextmanager
def _entry(file: str, key: str) -> Iterator[None]:
    """Any failure while using the entry ``key`` of ``file`` becomes a ``ValueError`` naming both.

    A file is data: whatever its values make the code below raise (``TypeError``, a
    ``RecursionError``, a negative dimension) is the file's problem, said as such.
    """
    try:
        yield
    except Exception as err:  # noqa: BLE001 - every failure of decoding is reported alike
        if isinstance(err, ValueError) and repr(file) in str(err) and key in str(err):
            raise
        if isinstance(err, ValueError):  # already says what is wrong and what to do
            raise ValueError(f"{file!r}, entry {key}: {err}") from err
        text = str(err).strip().splitlines()
        raise ValueError(
            f"{file!r}, entry {key}: {type(err).__name__}: {text[0] if text else ''}. The file "
            "is damaged or was edited: load another copy, or pass what this entry describes to "
            "NNHandler.load (model_class=..., loss_fn=..., skip_optimizer=True, ...)."
        ) from err


def _build_error_key(setup: Setup, err: BaseException) -> str:
    """The entries of the component whose construction failed (``_runtime`` names it)."""
    text = str(err)
    for name, keys in _COMPONENT_KEYS.items():
        component = getattr(setup, name, None)
        if component is not None and f"Could not build {component.name} " in text:
            return keys
    return ", ".join(_COMPONENT_KEYS.values())


def load_handler(
    cls: type[NNHandler],
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
    trust_checkpoint: bool = False,
    allow_legacy_pickle: bool = False,
    trust_model_code: bool = False,
    restore_rng: bool = True,
    safe_modules: Iterable[str] | None = None,
    **handler_kwargs: Any,
) -> Any:
    """Rebuild a handler (of class ``cls``) from a checkpoint; see ``docs/checkpointing.md``.

    Raises:
        ValueError: the file cannot be read or one of its entries cannot be used; the message
            names the file and the entry.
    """
    if model_class is not None and not (
        isinstance(model_class, type) and issubclass(model_class, torch.nn.Module)
    ):
        raise TypeError(f"model_class must be an nn.Module subclass, got {model_class!r}.")
    with loading_with(safe_modules):
        # Read onto the CPU: the handler's own device (per rank under DDP) is where loading
        # copies every tensor, so nothing lands on a device this process does not use.
        ckpt, file = read_checkpoint(path, "cpu", allow_legacy_pickle, bool(trust_checkpoint))
        legacy = bool(ckpt.get(LEGACY_MARK))
        given = {
            "model_class": model_class,
            "model_kwargs": model_kwargs,
            "loss_fn": loss_fn,
            "metrics": metrics,
            "callbacks": list(callbacks or []),
        }
        ctx = ReadContext(
            file=file,
            warn=_warn,
            trust=bool(trust_checkpoint) or legacy,
            trust_model_code=trust_model_code,
            given=given,
            skip=_skipped(skip_optimizer, skip_scheduler, skip_callbacks, skip_sampler_sde),
        )
        setup = _read_setup(ckpt, ctx)
        if not ctx.trust and model_kwargs is None:
            with _entry(file, "model_class, model_kwargs"):
                _check_model_size(setup, ckpt)
        if skip_callbacks and callbacks:
            setup = setup.replace(callbacks=tuple(callbacks))
        with _entry(file, "device"):
            handler_kwargs.setdefault("device", _target_device(device, ckpt))
        try:
            handler = cls.from_setup(setup, **handler_kwargs)
        except (TypeError, ValueError, RuntimeError, RecursionError, OverflowError) as err:
            with _entry(file, _build_error_key(setup, err)):
                raise
        _load_states(handler, ckpt, file, ctx.trust, strict_load, skip_history, skip_ema)
        if not skip_sampler_sde:
            with _entry(file, "sampler_state_dict"):
                _load_sampler_state(handler, ckpt, ctx.trust)
        state = handler.run_state
        if not skip_history:
            with _entry(file, "epoch_in_progress, loops"):
                state.set_resume_point(_resume_point(ckpt, file))
        with _entry(file, "datamodule_state_dict"):
            state.set_datamodule_state(_datamodule_state(ckpt.get("datamodule_state_dict"), ctx))
        with _entry(file, "rng_states"):
            if restore_rng and ckpt.get("rng_states"):
                _restore_rng_states(ckpt["rng_states"])
    handler.runtime.logger.info("Loaded checkpoint %s.", file)
    return handler


def _check_model_size(setup: Setup, ckpt: dict[str, Any]) -> None:
    """Refuse a model whose file-chosen arguments take more memory than the weights the file
    stores (``hidden=10**6`` in ``model_kwargs``), measured on the ``meta`` device."""
    model = setup.model
    try:
        wanted = _refs.meta_bytes(model.target, dict(model.kwargs), fallback=False, state_only=True)
    except Exception:  # noqa: BLE001 - not measurable unbuilt: the real build reports errors
        return
    weights = ckpt.get("model_state_dict")
    stored = _refs.nbytes(weights.values()) if isinstance(weights, dict) else 0
    if wanted > stored + _refs.MODULE_SLACK_BYTES:
        raise ValueError(
            f"{model.name} built with the file's model_kwargs takes {wanted} bytes, but the "
            f"file stores {stored} bytes of weights for it: a file does not choose how much "
            "memory loading takes. Pass model_kwargs={...} (or trust_checkpoint=True if you "
            "trust this file)."
        )


def _read_setup(ckpt: dict[str, Any], ctx: ReadContext) -> Setup:
    """:meth:`Setup.from_checkpoint`, a failure naming the file and the field's entries."""
    return Setup.from_checkpoint(
        ckpt, ctx, guard=lambda field: _entry(ctx.file, _FIELD_KEYS.get(field, field))
    )


def _load_history(state: RunState, ckpt: dict[str, Any], skip_history: bool) -> None:
    if not skip_history:
        state.load_history(ckpt)


def _load_states(
    handler: Any,
    ckpt: dict[str, Any],
    file: str,
    trust: bool,
    strict_load: bool,
    skip_history: bool,
    skip_ema: bool,
) -> None:
    """The states of the built objects and of the run, each failure naming its entry."""
    with _entry(file, "model_state_dict"):
        load_weights(
            handler.module,
            ckpt["model_state_dict"],
            strict_load,
            repr(file),
            _saved_class_name(ckpt.get("model_class")),
        )
    with _entry(file, "optimizer_state_dict, scheduler_state_dict"):
        _load_optimization_states(handler, ckpt)
    state = handler.run_state
    with _entry(file, _HISTORY_KEYS):
        _load_history(state, ckpt, skip_history)
    if not skip_ema:
        with _entry(file, "ema_decay, ema_state_dict, grad_scaler_state_dict"):
            _load_ema_and_scaler(state, handler.module, handler.device, ckpt)
    with _entry(file, "train_loader_kwargs, val_loader_kwargs, loader_rng_states"):
        state.set_loaded_loaders(
            {
                "train": dict(ckpt.get("train_loader_kwargs") or {}),
                "val": dict(ckpt.get("val_loader_kwargs") or {}),
            },
            dict(ckpt.get("loader_rng_states") or {}),
        )


def _datamodule_state(stored: Any, ctx: ReadContext) -> dict[str, Any] | None:
    """The saved ``state_dict()`` of the user's data module: a dict of plain data (a marker in
    it is decoded only with trust), or ``None`` (with a warning when it is not a dict)."""
    if stored is None:
        return None
    if not isinstance(stored, dict):
        _warn(f"Data module state not restored: it is a {type(stored).__name__}, not a dict.")
        return None
    try:
        if ctx.trust:
            return _refs.decode(stored, "datamodule_state_dict", True)
        return _refs.decode_plain(stored, "datamodule_state_dict")
    except _refs.Unresolvable as err:
        _warn(f"Data module state not restored: {err}.")
        return None


def _resume_point(ckpt: dict[str, Any], file: str) -> dict[str, Any] | None:
    """What continues an epoch that the file was written inside of (``None`` for a file written
    between epochs), checked to be of the shapes Lightning's fit loop and the epoch sums read.
    A malformed one is left out with a warning: training then starts the next epoch."""
    progress = ckpt.get("epoch_in_progress")
    if progress is None:
        return None
    loops = ckpt.get("loops")
    fit_loop = loops.get("fit_loop") if isinstance(loops, dict) else None
    stats = progress.get("train_stats") if isinstance(progress, dict) else None
    ok = (
        isinstance(fit_loop, dict)
        and isinstance(fit_loop.get("epoch_progress"), dict)
        and isinstance(stats, dict)
        and isinstance(stats.get("loss_sum"), (torch.Tensor, float, int))
        and isinstance(stats.get("count"), int)
        and isinstance(stats.get("metric_sums"), dict)
        and isinstance(stats.get("metric_counts"), dict)
    )
    if not ok:
        _warn(
            f"{file!r} was written inside an epoch but its loop state is malformed; training "
            "starts the next epoch instead of continuing that one."
        )
        return None
    return {"fit_loop": fit_loop, "train_stats": stats}


def _saved_class_name(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else getattr(value, "__qualname__", str(value))


# ---------------------------------------------------------- weights only
def initialize_from_checkpoint(
    cls: type[NNHandler],
    path: str,
    model_class: type,
    *,
    model_type: Any = None,
    device: Any = None,
    strict_load: bool = True,
    allow_legacy_pickle: bool = False,
    **model_kwargs: Any,
) -> Any:
    """A new handler (of class ``cls``) for ``model_class(**model_kwargs)`` with weights only.

    ``path`` may be an NNHandler checkpoint, a Lightning checkpoint or a bare ``state_dict``;
    nothing but the weights is restored. ``allow_legacy_pickle=True`` also reads files pickled
    by the original NNHandler (runs code from the file: trusted files only).
    """
    if not (isinstance(model_class, type) and issubclass(model_class, torch.nn.Module)):
        raise TypeError(f"model_class must be an nn.Module subclass, got {model_class!r}.")
    path = os.fspath(path)
    target = resolve_device(device) if device is not None else torch.device("cpu")
    obj = _read_object(path, "cpu", allow_legacy_pickle)
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
    handler = cls(
        model_class,
        device=target,
        model_type=model_type if model_type is not None else ModelType.CLASSIFICATION,
        **model_kwargs,
    )
    load_weights(handler.module, state, strict_load, repr(path), saved)
    return handler


# ------------------------------------------------------- Lightning resume
def restore_handler_extras(
    setup: Setup, state: RunState, ckpt: dict[str, Any], restore_rng: bool = True
) -> None:
    """Put the handler-only parts of ``ckpt`` into an existing handler's run state.

    For a ``Trainer.fit(module, ckpt_path=...)`` resume of the exported module, where Lightning
    restores weights, optimizer, scheduler and loops itself: this restores the history, the step
    counter, the states of the handler's native callbacks (matched by class name, plain data
    only), the EMA weights and, unless ``restore_rng=False``, the generator states. The file's
    auto-save settings and bookkeeping are never taken over.
    """
    _read.check_format(ckpt, "The checkpoint Lightning resumed from")
    state.load_history(ckpt)
    states = dict(ckpt.get("callback_states") or {})
    for cb in setup.callbacks:
        if not isinstance(cb, Callback):
            continue
        key = next((k for k in states if k.split("#", 1)[0] == type(cb).__name__), None)
        if key is not None:
            cb.load_state_dict(_refs.decode(states.pop(key), f"callback {key} state"))
    if state.ema is not None and ckpt.get("ema_state_dict"):
        state.ema.load_state_dict(ckpt["ema_state_dict"])
    if restore_rng and ckpt.get("rng_states"):
        _restore_rng_states(ckpt["rng_states"])
