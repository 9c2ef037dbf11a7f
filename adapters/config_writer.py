"""A handler built in Python → the Lightning CLI YAML (``nn-handler fit --config``) rebuilding it.

Everything is written by import path: classes as ``class_path`` + ``init_args``, functions as
dotted paths. Init args of objects (datasets, losses, metrics, callbacks) are read back from the
attributes of the same name, the usual convention of configurable classes; parameters without
such an attribute keep their defaults. What cannot be written this way (a lambda, a class from
``__main__``, a TensorDataset of in-memory tensors, a frozen submodule, ...) is reported: an error
by default, or a warning and a ``null`` placeholder with ``strict=False``. Nothing is dropped
silently.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import os
import tempfile
import warnings
from typing import TYPE_CHECKING, Any

import torch
import yaml
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler
from torch.utils.data._utils.collate import default_collate

if TYPE_CHECKING:  # pragma: no cover
    from nn_handler.handler import NNHandler

__all__ = ["ConfigExportError", "build_config", "write_config"]

_DATAMODULE_PATH = "nn_handler.adapters.datamodule.HandlerDataModule"
_MISSING = object()


class ConfigExportError(ValueError):
    """Parts of a handler cannot be written as a CLI config; ``problems`` lists them by key."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        lines = "\n  - ".join(self.problems)
        super().__init__(
            "The handler cannot be fully written as a Lightning CLI config:\n  - "
            f"{lines}\nFix these (define functions and classes at module level in an importable "
            "module; give datasets plain init arguments stored as attributes of the same name), or "
            "call export_config(path, strict=False) to write the rest with null placeholders."
        )


class _Report:
    """Collects what cannot be expressed, keyed by its place in the config."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")


def import_path(obj: Any) -> str | None:
    """``"package.module.QualName"`` when importing that path gives back ``obj``, else None."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    try:
        target: Any = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        return None
    return f"{module}.{qualname}" if target is obj else None


def _why_no_path(obj: Any) -> str:
    name = getattr(obj, "__qualname__", type(obj).__name__)
    if "<lambda>" in name:
        return "a lambda has no import path; define a named function at module level"
    if "<locals>" in name:
        return f"{name} is defined inside a function; define it at module level"
    if getattr(obj, "__module__", None) == "__main__":
        return f"{name} is defined in __main__ (a script); move it to an importable module"
    return f"{name!r} cannot be imported back by its name"


def _plain(value: Any) -> Any:
    """``value`` as YAML-safe plain data, or ``_MISSING`` when it is not plain data."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return _MISSING if any(v is _MISSING for v in items) else items
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return _MISSING
        items = {k: _plain(v) for k, v in value.items()}
        return _MISSING if any(v is _MISSING for v in items.values()) else items
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.requires_grad:
        return value.item()
    return _MISSING


def _value(value: Any, key: str, report: _Report) -> Any:
    """A kwarg value: plain data, or a function/class written by import path."""
    plain = _plain(value)
    if plain is not _MISSING:
        return plain
    if inspect.isfunction(value) or inspect.isclass(value) or inspect.isbuiltin(value):
        path = import_path(value)
        if path is not None:
            return path
        report.add(key, _why_no_path(value))
        return None
    report.add(key, f"a {type(value).__name__} value cannot be written in YAML")
    return None


def _kwargs(kwargs: dict[str, Any], key: str, report: _Report) -> dict[str, Any]:
    return {name: _value(v, f"{key}.{name}", report) for name, v in kwargs.items()}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - incomparable values are simply "not the same"
        return False


def _init_args(obj: Any, key: str, report: _Report, verify: bool) -> dict[str, Any] | None:
    """Init args of ``obj`` read back from attributes named like its ``__init__`` parameters.

    ``None`` (and a reported problem) when some argument cannot be read back at all.
    """
    cls = type(obj)
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return {}
    args: dict[str, Any] = {}
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            continue
        has = hasattr(obj, p.name)
        if p.kind is p.VAR_POSITIONAL or (not has and p.default is p.empty):
            report.add(
                key,
                f"{cls.__name__}'s argument {p.name!r} cannot be read back from the object "
                "(store each __init__ argument as an attribute of the same name)",
            )
            return None
        if not has:
            continue
        value = getattr(obj, p.name)
        if p.default is not p.empty and _same(value, p.default):
            continue
        if isinstance(value, torch.Tensor) and value.numel() != 1:
            report.add(f"{key}.init_args.{p.name}", "a tensor cannot be written in YAML")
            continue
        args[p.name] = _value(value, f"{key}.init_args.{p.name}", report)
    if verify:
        _verify_round_trip(obj, args, key, report)
    return args


def _verify_round_trip(obj: Any, args: dict[str, Any], key: str, report: _Report) -> None:
    """Rebuild ``obj`` from ``args`` and compare its attributes: catches transformed arguments."""
    try:
        rebuilt = type(obj)(**args)
    except Exception as err:  # noqa: BLE001 - any failure means the args do not rebuild it
        report.add(key, f"{type(obj).__name__}(**{args}) fails: {err}")
        return
    for name in args:
        if not _same(getattr(rebuilt, name, _MISSING), getattr(obj, name, _MISSING)):
            report.add(
                f"{key}.init_args.{name}",
                f"{type(obj).__name__} transforms this argument when storing it; it cannot be "
                "read back",
            )


def _class_spec(obj: Any, key: str, report: _Report, verify: bool = False) -> dict[str, Any] | None:
    path = import_path(type(obj))
    if path is None:
        report.add(key, _why_no_path(type(obj)))
        return None
    spec: dict[str, Any] = {"class_path": path}
    args = _init_args(obj, key, report, verify)
    if args is None:
        return None
    if args:
        spec["init_args"] = args
    return spec


def _callable_spec(fn: Any, key: str, report: _Report) -> Any:
    """A function by dotted path; a callable object (loss module, torchmetric) by class spec."""
    if inspect.isfunction(fn) or inspect.isbuiltin(fn) or inspect.isclass(fn):
        return _value(fn, key, report)
    if isinstance(fn, functools.partial):
        report.add(key, "a functools.partial cannot be written; use a named function")
        return None
    if callable(fn):
        return _class_spec(fn, key, report, verify=True)
    report.add(key, f"{fn!r} cannot be written by import path")
    return None


def _class_with_kwargs(cls: type | None, kwargs: dict[str, Any], key: str, report: _Report):
    if cls is None:
        return None
    path = import_path(cls)
    if path is None:
        report.add(key, _why_no_path(cls))
        return None
    spec: dict[str, Any] = {"class_path": path}
    if kwargs:
        spec["init_args"] = _kwargs(kwargs, f"{key}.init_args", report)
    return spec


def _loader_kwargs(slot: Any, key: str, report: _Report) -> dict[str, Any]:
    if slot.loader_kwargs or slot.loader is None:
        return _kwargs(slot.loader_kwargs, key, report)
    # Given as a DataLoader object: read its settings back.
    loader: DataLoader = slot.loader
    kwargs: dict[str, Any] = {}
    if loader.batch_size != 1:
        kwargs["batch_size"] = loader.batch_size
    if isinstance(loader.sampler, RandomSampler):
        kwargs["shuffle"] = True
    elif not isinstance(loader.sampler, SequentialSampler):
        report.add(key, f"a custom sampler ({type(loader.sampler).__name__}) cannot be written")
    for name, default in (("drop_last", False), ("num_workers", 0), ("pin_memory", False)):
        if getattr(loader, name) != default:
            kwargs[name] = getattr(loader, name)
    if loader.collate_fn is not default_collate:
        kwargs["collate_fn"] = _value(loader.collate_fn, f"{key}.collate_fn", report)
    return kwargs


def _data_section(handler: NNHandler, report: _Report) -> dict[str, Any]:
    init: dict[str, Any] = {}
    for role in ("train", "val"):
        slot = getattr(handler, f"_{role}_data")
        if slot is None:
            continue
        key = f"data.init_args.{role}_dataset"
        init[f"{role}_dataset"] = _class_spec(slot.dataset, key, report)
        init[f"{role}_loader"] = _loader_kwargs(slot, f"data.init_args.{role}_loader", report)
    return {"class_path": _DATAMODULE_PATH, "init_args": init}


def _model_section(
    handler: NNHandler,
    report: _Report,
    *,
    ema_decay: float,
    seed: int | None,
    debug_print_interval: int | None,
    save_on_last_epoch: bool,
) -> dict[str, Any]:
    from nn_handler.callbacks.base import Callback

    model = _class_with_kwargs(handler._model_class, handler._model_kwargs, "model.model", report)
    if model is not None:
        model.setdefault("init_args", {})
    section: dict[str, Any] = {"model": model, "model_type": handler._model_type.value}
    loss = handler._loss
    section["loss"] = _callable_spec(loss.fn, "model.loss", report) if loss else None
    if loss is None:
        report.add("model.loss", "no loss function is set (set_loss_fn)")
    section["loss_kwargs"] = _kwargs(loss.kwargs, "model.loss_kwargs", report) if loss else {}
    section["pass_epoch_to_loss"] = bool(loss and loss.pass_epoch)
    section["optimizer"] = _class_with_kwargs(
        handler._optimizer_class, handler._optimizer_kwargs, "model.optimizer", report
    )
    if handler._optimizer_class is None:
        report.add("model.optimizer", "no optimizer is set (set_optimizer)")
    section["scheduler"] = _class_with_kwargs(
        handler._scheduler_class, handler._scheduler_kwargs, "model.scheduler", report
    )
    section["metrics"] = {
        name: _callable_spec(fn, f"model.metrics.{name}", report)
        for name, fn in handler._metrics.items()
    }
    native = [c for c in handler._callbacks if isinstance(c, Callback)]
    section["callbacks"] = [
        _class_spec(c, f"model.callbacks[{i}]", report, verify=True) for i, c in enumerate(native)
    ]
    saver = handler._auto_save
    section["auto_save"] = (
        {
            "interval": saver.interval,
            "save_path": saver.save_path,
            "name": saver.name,
            "overwrite": saver.overwrite,
        }
        if saver.enabled
        else None
    )
    section["save_on_last_epoch"] = bool(save_on_last_epoch)
    section["ema_decay"] = float(ema_decay)
    section["seed"] = seed
    section["debug_print_interval"] = debug_print_interval
    section["save_model_code"] = bool(handler._save_model_code)
    section["sde"] = _class_with_kwargs(
        handler._sde_class, handler._sde_kwargs, "model.sde", report
    )
    section["sampler"] = _class_with_kwargs(
        handler._sampler_class, handler._sampler_kwargs, "model.sampler", report
    )
    if handler._sde is not None and handler._sde_class is None:
        report.add("model.sde", "an SDE object was assigned directly; use set_sde(cls, **kwargs)")
    if handler._sampler is not None and handler._sampler_class is None:
        report.add("model.sampler", "a sampler was assigned directly; use set_sampler(cls, **kw)")
    _report_model_state(handler, report)
    return section


def _report_model_state(handler: NNHandler, report: _Report) -> None:
    """Model-side settings the config has no key for."""
    if handler._eval_modules:
        report.add("model", "keep_eval_on_module(...) settings cannot be written in a config")
    if any(not p.requires_grad for p in handler._module.parameters()):
        report.add("model", "freeze_module(...) (frozen parameters) cannot be written in a config")
    if handler._compiled is not None:
        report.add("model", "compile_model(...) cannot be written in a config")


def _trainer_section(
    handler: NNHandler,
    report: _Report,
    *,
    epochs: int,
    validate_every: int | None,
    gradient_accumulation_steps: int,
    use_amp: bool,
    gradient_clipping_norm: float | None,
    progress_bar: bool,
    trainer_kwargs: dict[str, Any] | None,
) -> dict[str, Any]:
    from nn_handler.callbacks.base import Callback

    from .trainer_factory import accelerator_for, check_trainer_kwargs

    accelerator, devices = accelerator_for(handler._device)
    precision = "16-mixed" if use_amp and handler._device.type == "cuda" else "32-true"
    section: dict[str, Any] = {
        "accelerator": accelerator,
        "devices": devices,
        "max_epochs": int(epochs),
        "check_val_every_n_epoch": max(int(validate_every or 0), 1),
        "accumulate_grad_batches": int(gradient_accumulation_steps),
        "gradient_clip_val": gradient_clipping_norm,
        "gradient_clip_algorithm": "norm" if gradient_clipping_norm else None,
        "precision": precision,
        # train() never runs Lightning's sanity check (it would also draw random numbers).
        "num_sanity_val_steps": 0,
        "enable_progress_bar": bool(progress_bar),
        "enable_model_summary": False,
    }
    if not validate_every:
        section["limit_val_batches"] = 0
    others = [c for c in handler._callbacks if not isinstance(c, Callback)]
    if others:
        section["callbacks"] = [
            _class_spec(c, f"trainer.callbacks[{i}]", report, verify=True)
            for i, c in enumerate(others)
        ]
    if trainer_kwargs:
        check_trainer_kwargs(trainer_kwargs)
        section.update(_kwargs(trainer_kwargs, "trainer", report))
    return section


def build_config(
    handler: NNHandler,
    epochs: int = 1,
    validate_every: int | None = 1,
    gradient_accumulation_steps: int = 1,
    use_amp: bool = False,
    gradient_clipping_norm: float | None = None,
    ema_decay: float | None = None,
    seed: int | None = None,
    progress_bar: bool = True,
    debug_print_interval: int | None = None,
    save_on_last_epoch: bool = True,
    trainer_kwargs: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The CLI config for ``handler`` trained as ``train(epochs, ...)``, and the problems found.

    The arguments are those of :meth:`NNHandler.train`. ``seed`` (default: the handler's) is
    both ``seed_everything`` (seeds before the model is built) and ``model.seed`` (seeds again
    right before training, as ``train(seed=...)`` does).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}.")
    report = _Report()
    seed = handler._seed if seed is None else seed
    config: dict[str, Any] = {"seed_everything": seed if seed is not None else True}
    config["trainer"] = _trainer_section(
        handler,
        report,
        epochs=epochs,
        validate_every=validate_every,
        gradient_accumulation_steps=gradient_accumulation_steps,
        use_amp=use_amp,
        gradient_clipping_norm=gradient_clipping_norm,
        progress_bar=progress_bar,
        trainer_kwargs=trainer_kwargs,
    )
    config["model"] = _model_section(
        handler,
        report,
        ema_decay=handler._ema_decay if ema_decay is None else ema_decay,
        seed=seed,
        debug_print_interval=debug_print_interval,
        save_on_last_epoch=save_on_last_epoch,
    )
    if handler._train_data is None:
        report.add("data.init_args.train_dataset", "no training data is set (set_train_loader)")
    config["data"] = _data_section(handler, report)
    return config, report.problems


def write_config(handler: NNHandler, path: str, strict: bool = True, **train_args: Any) -> None:
    """Write :func:`build_config`'s YAML to ``path`` (atomically).

    Raises:
        ConfigExportError: something cannot be written by import path (``strict=True``); with
            ``strict=False`` a warning lists it and the YAML holds ``null`` in its place.
    """
    config, problems = build_config(handler, **train_args)
    if problems and strict:
        raise ConfigExportError(problems)
    header = [
        "# Lightning CLI config written by NNHandler.export_config for "
        f"{handler._model_class.__name__}.",
        f"# Run it with:  nn-handler fit --config {os.path.basename(os.fspath(path))}",
    ]
    if problems:
        warnings.warn(
            str(ConfigExportError(problems)).splitlines()[0] + " " + "; ".join(problems),
            UserWarning,
            stacklevel=3,
        )
        header.append("# NOT WRITABLE (null below; fill in by hand):")
        header.extend(f"#   {p}" for p in problems)
    text = "\n".join(header) + "\n" + yaml.safe_dump(config, sort_keys=False)
    _atomic_write(os.fspath(path), text)


def _atomic_write(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
