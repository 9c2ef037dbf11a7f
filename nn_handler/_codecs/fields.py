"""How each field of a :class:`Setup` is written and read back.

One codec per field, each with four sides: checkpoint entry, checkpoint reader, CLI config entry,
CLI rebuild. A field that cannot appear on one side says why (``not_in_checkpoint`` /
``not_in_config``). Checkpoint readers decode through :mod:`nn_handler._codecs.refs`, the one
place where the safe-loading rule lives; what a decoded value may then do (run saved model code,
call a function with the file's arguments, write files) is decided by
:mod:`nn_handler._codecs.trust`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .._state.autosave import AutoSaveSettings, settings_for_resume
from .._state.component import Component, same_value
from .._state.data import DataSlot, make_slot
from .._state.loss import LossSpec
from .._state.train_options import TrainOptions
from ..callbacks.base import Callback
from ..enums import DataLoaderType, ModelType
from ..generative.sde import SDE
from ..sampler import Sampler
from . import config_values as cfg
from . import refs as _refs
from . import trust as _trust
from .paths import Kind, Unresolvable, import_path, resolve

if TYPE_CHECKING:
    from .._state.setup import ReadContext

_OR_TRUST = ", or NNHandler.load(..., trust_checkpoint=True) if you trust this file"

__all__ = ["CODECS", "Codec", "KINDS"]


def _subclass(*bases: Any) -> Any:
    def check(obj: Any) -> bool:
        resolved = tuple(b() if callable(b) and not inspect.isclass(b) else b for b in bases)
        return inspect.isclass(obj) and issubclass(obj, resolved)

    return check


def _scheduler_bases() -> tuple[type, ...]:
    lr = torch.optim.lr_scheduler
    return (lr.LRScheduler, lr.ReduceLROnPlateau)


def _is_sde_class(obj: Any) -> bool:
    # SDEs are duck-typed: the class must define what training and sampling call.
    return inspect.isclass(obj) and all(
        callable(getattr(obj, m, None)) for m in ("marginal_prob", "sigma", "prior")
    )


def _is_sampler_class(obj: Any) -> bool:
    return inspect.isclass(obj) and all(
        callable(getattr(obj, m, None)) for m in ("sample", "save", "load")
    )


KINDS = {
    "model": Kind("a valid model class (an nn.Module subclass)", _subclass(nn.Module)),
    "optimizer": Kind(
        "a valid optimizer class (a torch.optim.Optimizer subclass)",
        _subclass(torch.optim.Optimizer),
    ),
    "scheduler": Kind(
        "a valid scheduler class (a torch.optim.lr_scheduler class)", _subclass(_scheduler_bases)
    ),
    "sde": Kind("a valid SDE class (marginal_prob, sigma, prior)", _is_sde_class),
    "sampler": Kind("a valid sampler class (sample, save, load)", _is_sampler_class),
    # Only native callbacks are stored with their arguments; Lightning callbacks are named only.
    "callback": Kind("an nn_handler callback class", _subclass(Callback)),
}


class Codec:
    """The four sides of one field; defaults: not stored, not configured, compared by value."""

    not_in_checkpoint: str | None = None
    not_in_config: str | None = None

    def to_checkpoint(self, value: Any, problems: list[str]) -> dict[str, Any]:
        return {}

    def from_checkpoint(
        self, ckpt: dict[str, Any], ctx: ReadContext, values: dict[str, Any]
    ) -> Any:
        return None

    def to_config(self, value: Any, report: cfg.Report) -> dict[str, Any]:
        return {}

    def from_config(self, args: dict[str, Any]) -> Any:
        return None

    def same(self, a: Any, b: Any) -> bool:
        return same_value(a, b)


def _stored_class(value: Any, what: str, kind: Kind, trust: bool) -> Any:
    """A stored class: an import path (our files) or the class itself (legacy pickles)."""
    if value is None:
        return None
    if isinstance(value, str):
        return resolve(value, what, kind, trust)
    if not kind.accepts(value):
        raise Unresolvable(f"the {what} {value!r} is not {kind.name}")
    return value


def _table(ckpt: dict[str, Any], key: str, ctx: Any) -> dict[str, Any]:
    """``ckpt[key]`` when it is a dict (missing: empty); anything else is reported and ignored."""
    value = ckpt.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        ctx.warn(f"{key} not restored: the file holds a {type(value).__name__}, not a dict.")
        return {}
    return value


def _class_path(cls: Any, problems: list[str], where: str) -> str | None:
    try:
        path = import_path(cls)
    except Unresolvable as err:
        problems.append(f"{where}: {err}; stored as None")
        return None
    _refs.note_main(cls, problems, where)
    return path


# ------------------------------------------------------------------ components
class ComponentCodec(Codec):
    """A class with keyword arguments: ``<prefix>_class`` + ``<prefix>_kwargs`` in checkpoints."""

    def __init__(self, prefix: str, config_key: str, base: Any, label: str, advice: str):
        self.prefix, self.config_key, self.base = prefix, config_key, base
        self.label, self.advice = label, advice
        self.kind = KINDS[prefix]

    def to_checkpoint(self, value: Component | None, problems: list[str]) -> dict[str, Any]:
        p = self.prefix
        if value is None:
            return {f"{p}_class": None, f"{p}_kwargs": {}}
        return {
            f"{p}_class": _class_path(value.target, problems, f"{p}_class"),
            f"{p}_kwargs": _refs.encode(dict(value.kwargs), problems, f"{p}_kwargs"),
        }

    def read(self, ckpt: dict[str, Any], trust: bool) -> Component | None:
        p = self.prefix
        target = _stored_class(ckpt.get(f"{p}_class"), f"{p} class", self.kind, trust)
        if target is None:
            return None
        kwargs = _refs.decode_kwargs(ckpt.get(f"{p}_kwargs"), f"{p}_kwargs", trust)
        return Component(target, kwargs)

    def from_checkpoint(
        self, ckpt: dict[str, Any], ctx: ReadContext, values: dict[str, Any]
    ) -> Component | None:
        try:
            return self.read(ckpt, ctx.trust)
        except Unresolvable as err:
            ctx.warn(f"{self.label} not restored: {err}. {self.advice}")
            return None

    def to_config(self, value: Component | None, report: cfg.Report) -> dict[str, Any]:
        if value is not None and value.assigned and not value.kwargs:
            report.add(
                self.config_key,
                f"a {self.prefix} object was assigned directly; use "
                f"set_{self.prefix}(cls, **kwargs)",
            )
            return {self.config_key: None}
        return {self.config_key: cfg.component_spec(value, self.config_key, report)}

    def from_config(self, args: dict[str, Any]) -> Component | None:
        factory = args.get(self.config_key)
        if factory is None:
            return None
        cls, kwargs = cfg.factory_parts(factory, self.config_key.split(".")[-1], self.base())
        return Component(cls, kwargs)


class ModelCodec(ComponentCodec):
    """The model: required; its class may be given at load, or rebuilt from saved source."""

    def __init__(self) -> None:
        super().__init__("model", "model.model", lambda: nn.Module, "Model", "")

    def to_config(self, value: Component | None, report: cfg.Report) -> dict[str, Any]:
        spec = cfg.component_spec(value, self.config_key, report)
        if spec is not None:
            spec.setdefault("init_args", {})
        return {self.config_key: spec}

    def from_checkpoint(
        self, ckpt: dict[str, Any], ctx: ReadContext, values: dict[str, Any]
    ) -> Component:
        given_cls, given_kwargs = ctx.given.get("model_class"), ctx.given.get("model_kwargs")
        if given_cls is not None:
            if not self.kind.accepts(given_cls):
                raise TypeError(f"model_class must be an nn.Module subclass, got {given_cls!r}.")
            target = given_cls
        else:
            target = self._stored_target(ckpt, ctx)
        try:
            kwargs = _refs.decode_kwargs(ckpt.get("model_kwargs"), "model_kwargs", ctx.trust)
        except Unresolvable as err:
            if given_kwargs is None:
                trust = "" if "trust_checkpoint" in str(err) else _OR_TRUST
                raise ValueError(
                    f"Cannot rebuild the model: {err}. Pass model_kwargs={{...}}{trust}."
                ) from None
            kwargs = {}
        kwargs.update(given_kwargs or {})
        return Component(target, kwargs)

    def _stored_target(self, ckpt: dict[str, Any], ctx: Any) -> type:
        stored = ckpt.get("model_class")
        try:
            target = _stored_class(stored, "model class", self.kind, ctx.trust)
        except Unresolvable as err:
            target, reason = None, str(err)
        else:
            reason = "the file stores no model class (it had no import path when saved)"
        if target is not None:
            return target
        if ctx.trust_model_code and ckpt.get("model_code"):
            return _trust.class_from_code(ckpt["model_code"], stored)
        raise ValueError(
            f"Cannot rebuild the model: {reason}. Pass the class: NNHandler.load(path, "
            "model_class=YourModel)."
        )


class SchedulerCodec(ComponentCodec):
    """A scheduler needs an optimizer: without one (skipped or not restored) it is not read."""

    def from_checkpoint(
        self, ckpt: dict[str, Any], ctx: ReadContext, values: dict[str, Any]
    ) -> Component | None:
        if values.get("optimizer") is None:
            return None
        return super().from_checkpoint(ckpt, ctx, values)


# ----------------------------------------------------------------- plain values
class PlainCodec(Codec):
    """A plain value under one checkpoint key and one config key."""

    def __init__(
        self,
        key: str,
        config_key: str | None,
        default: Any = None,
        to_plain: Any = None,
        from_plain: Any = None,
        not_in_config: str | None = None,
    ):
        self.key, self.config_key, self.default = key, config_key, default
        self.to_plain = to_plain or (lambda v: v)
        self.from_plain = from_plain or (lambda v: v)
        self.not_in_config = not_in_config

    def to_checkpoint(self, value: Any, problems: list[str]) -> dict[str, Any]:
        return {self.key: _refs.encode(self.to_plain(value), problems, self.key)}

    def from_checkpoint(
        self, ckpt: dict[str, Any], ctx: ReadContext, values: dict[str, Any]
    ) -> Any:
        if ckpt.get(self.key) is None:
            return None
        try:
            # A setting is plain data: a stored class or module here is refused unbuilt.
            return self.from_plain(_refs.decode_plain(ckpt[self.key], self.key))
        except (Unresolvable, TypeError, ValueError) as err:
            ctx.warn(f"{self.key} not restored: {err}.")
            return None

    def to_config(self, value: Any, report: cfg.Report) -> dict[str, Any]:
        if self.config_key is None:
            return {}
        return {self.config_key: cfg.value(self.to_plain(value), self.config_key, report)}

    def from_config(self, args: dict[str, Any]) -> Any:
        if self.config_key is None or args.get(self.config_key) is None:
            return None
        return self.from_plain(args[self.config_key])


class ModelCodeCodec(PlainCodec):
    """The model's source text: a record written when ``save_model_code`` is on."""

    def __init__(self) -> None:
        super().__init__(
            "model_code",
            None,
            from_plain=_of_kind(str, "model_code"),
            not_in_config="derived from the model class's source when save_model_code is on",
        )


class DeviceCodec(PlainCodec):
    """The requested device; in a config it becomes the Trainer's accelerator and devices."""

    def __init__(self) -> None:
        super().__init__(
            "device",
            None,
            to_plain=str,
            not_in_config="the Trainer's accelerator/devices place the model",
        )

    def from_checkpoint(
        self, ckpt: dict[str, Any], ctx: ReadContext, values: dict[str, Any]
    ) -> Any:
        return None  # where to run is chosen by whoever loads (NNHandler.load(device=...))


# ------------------------------------------------------------------------ loss
class LossCodec(Codec):
    def to_checkpoint(self, value: LossSpec | None, problems: list[str]) -> dict[str, Any]:
        if value is None:
            return {"loss_fn": None, "loss_fn_kwargs": {}, "pass_epoch_to_loss": False}
        loss = _refs.encode(value.fn, problems, "loss_fn")
        if _refs.is_marker(loss, _refs.MISSING):
            problems[-1] += "; stored as None"
            loss = None
        return {
            "loss_fn": loss,
            "loss_fn_unstored": loss is None,
            "loss_fn_kwargs": _refs.encode(dict(value.kwargs), problems, "loss_fn_kwargs"),
            "pass_epoch_to_loss": bool(value.pass_epoch),
        }

    def from_checkpoint(
        self, ckpt: dict[str, Any], ctx: ReadContext, values: dict[str, Any]
    ) -> LossSpec | None:
        fn = ctx.given.get("loss_fn")
        try:
            kwargs = _refs.decode_kwargs(ckpt.get("loss_fn_kwargs"), "loss_fn_kwargs", ctx.trust)
            if fn is None and ckpt.get("loss_fn") is not None:
                fn = _refs.decode_callable(ckpt["loss_fn"], "loss_fn", ctx.trust)
                # A function and its arguments, both chosen by the file: a partial.
                _trust.check_loss_arguments(fn, kwargs, ctx.trust)
        except Unresolvable as err:
            ctx.warn(f"Loss not restored: {err}. Pass loss_fn= to load or call set_loss_fn(...).")
            return None
        if fn is None:
            if ckpt.get("loss_fn_unstored"):
                ctx.warn(
                    "The checkpoint stores no loss function (it had no import path when saved). "
                    "Pass loss_fn= to NNHandler.load or call set_loss_fn(...) before training."
                )
            return None
        return LossSpec.quiet(fn, kwargs, bool(ckpt.get("pass_epoch_to_loss", False)))

    def to_config(self, value: LossSpec | None, report: cfg.Report) -> dict[str, Any]:
        if value is None:
            report.add("model.loss", "no loss function is set (set_loss_fn)")
            return {"model.loss": None, "model.loss_kwargs": {}, "model.pass_epoch_to_loss": False}
        return {
            "model.loss": cfg.callable_spec(value.fn, "model.loss", report),
            "model.loss_kwargs": cfg.kwargs_values(dict(value.kwargs), "model.loss_kwargs", report),
            "model.pass_epoch_to_loss": bool(value.pass_epoch),
        }

    def from_config(self, args: dict[str, Any]) -> LossSpec | None:
        fn = args.get("model.loss")
        if fn is None:
            return None
        return LossSpec(
            fn,
            dict(args.get("model.loss_kwargs") or {}),
            bool(args.get("model.pass_epoch_to_loss")),
        )

    def same(self, a: LossSpec | None, b: LossSpec | None) -> bool:
        if a is None or b is None:
            return a is b
        return (
            _same_callable(a.fn, b.fn)
            and same_value(dict(a.kwargs), dict(b.kwargs))
            and a.pass_epoch == b.pass_epoch
        )


def _same_callable(a: Any, b: Any) -> bool:
    """Functions by identity; objects (loss modules, metrics) by class and init arguments."""
    if a is b:
        return True
    if inspect.isroutine(a) or inspect.isroutine(b) or inspect.isclass(a):
        return False
    return type(a) is type(b) and same_value(
        _refs.constructor_kwargs(a), _refs.constructor_kwargs(b)
    )


# --------------------------------------------------------------------- metrics
class MetricsCodec(Codec):
    def to_checkpoint(self, value: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
        return {
            "metrics": {
                name: _refs.encode(fn, problems, f"metric {name!r}") for name, fn in value.items()
            }
        }

    def from_checkpoint(
        self, ckpt: dict[str, Any], ctx: ReadContext, values: dict[str, Any]
    ) -> dict[str, Any]:
        given = dict(ctx.given.get("metrics") or {})
        out: dict[str, Any] = {}
        for name, stored in _table(ckpt, "metrics", ctx).items():
            if name in given:
                continue
            try:
                out[name] = _refs.decode_callable(stored, f"metric {name!r}", ctx.trust)
            except Unresolvable as err:
                ctx.warn(
                    f"Metric {name!r} not restored: {err}. Pass metrics={{{name!r}: fn}} to load."
                )
        out.update(given)
        return out

    def to_config(self, value: Mapping[str, Any], report: cfg.Report) -> dict[str, Any]:
        return {
            "model.metrics": {
                name: cfg.callable_spec(fn, f"model.metrics.{name}", report)
                for name, fn in value.items()
            }
        }

    def from_config(self, args: dict[str, Any]) -> dict[str, Any]:
        return dict(args.get("model.metrics") or {})

    def same(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
        return list(a) == list(b) and all(_same_callable(a[k], b[k]) for k in a)


# ------------------------------------------------------------------- callbacks
def _is_native(cb: Any) -> bool:
    return isinstance(cb, Callback)


class CallbacksCodec(Codec):
    """Native callbacks by class, init arguments and state; Lightning ones are only named."""

    def to_checkpoint(self, value: tuple[Any, ...], problems: list[str]) -> dict[str, Any]:
        classes: dict[str, Any] = {}
        states: dict[str, Any] = {}
        kwargs: dict[str, Any] = {}
        lightning: list[str] = []
        for cb in value:
            if not _is_native(cb):
                lightning.append(_class_path(type(cb), [], "callback") or type(cb).__qualname__)
                continue
            name = type(cb).__name__
            key, i = name, 1
            while key in classes:
                key, i = f"{name}#{i}", i + 1
            where = f"callback {key}"
            classes[key] = _class_path(type(cb), problems, where)
            try:
                state = cb.state_dict()
            except Exception as err:  # noqa: BLE001 - a broken callback must not lose the file
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

    def from_checkpoint(
        self, ckpt: dict[str, Any], ctx: ReadContext, values: dict[str, Any]
    ) -> tuple[Any, ...]:
        classes = _table(ckpt, "callback_classes", ctx)
        states = _table(ckpt, "callback_states", ctx)
        init = _table(ckpt, "callback_kwargs", ctx)
        given: dict[str, list[Any]] = {}
        for cb in ctx.given.get("callbacks") or []:
            given.setdefault(type(cb).__name__, []).append(cb)
        out, unmatched = [], []
        for key in list(classes) + [k for k in states if k not in classes]:
            name = key.split("#", 1)[0]
            try:
                state = _refs.decode(states.get(key) or {}, f"callback {key} state", ctx.trust)
                if given.get(name):
                    cb = given[name].pop(0)
                else:
                    cls = _stored_class(
                        classes.get(key), f"callback class {key}", KINDS["callback"], ctx.trust
                    )
                    if cls is None:
                        raise Unresolvable("no class stored")
                    kwargs = _refs.decode_kwargs(init.get(key), key, ctx.trust)
                    if not ctx.trust:
                        _trust.check_write_locations(kwargs, ctx.file)
                    cb = _build_callback(cls, kwargs)
                    if not ctx.trust and _is_native(cb):
                        _trust.confine_writes(cb, ctx.file)
            except (Unresolvable, TypeError) as err:
                unmatched.append(f"{key} ({err})")
                continue
            if state:
                cb.load_state_dict(state)
            out.append(cb)
        out.extend(cb for rest in given.values() for cb in rest)
        if unmatched:
            ctx.warn(
                "Saved callback states with no matching callback were not restored: "
                + "; ".join(unmatched)
                + ". Pass the callbacks to NNHandler.load(path, callbacks=[...]) to restore them."
            )
        lightning = ckpt.get("lightning_callback_classes") or []
        if lightning:
            ctx.warn(
                "Lightning callbacks are not re-created by load: "
                + ", ".join(map(str, lightning))
                + ". Add them again with add_callback(...)."
            )
        return tuple(out)

    def to_config(self, value: tuple[Any, ...], report: cfg.Report) -> dict[str, Any]:
        native = [c for c in value if _is_native(c)]
        others = [c for c in value if not _is_native(c)]
        out: dict[str, Any] = {
            "model.callbacks": [
                cfg.class_spec(c, f"model.callbacks[{i}]", report, verify=True)
                for i, c in enumerate(native)
            ]
        }
        if others:
            out["trainer.callbacks"] = [
                cfg.class_spec(c, f"trainer.callbacks[{i}]", report, verify=True)
                for i, c in enumerate(others)
            ]
        return out

    def from_config(self, args: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(args.get("model.callbacks") or ())

    def same(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
        native_a = [c for c in a if _is_native(c)]
        native_b = [c for c in b if _is_native(c)]
        return len(native_a) == len(native_b) and all(
            _same_callable(x, y) for x, y in zip(native_a, native_b)
        )


def _build_callback(cls: type, kwargs: dict[str, Any]) -> Any:
    """Rebuild with the saved constructor arguments; fall back to defaults if they no longer fit."""
    try:
        return cls(**kwargs)
    except TypeError:
        return cls()


# ------------------------------------------------------------------- auto-save
class AutoSaveCodec(Codec):
    def to_checkpoint(self, value: AutoSaveSettings, problems: list[str]) -> dict[str, Any]:
        return {"auto_saver_state": value.state_dict()}

    def from_checkpoint(
        self, ckpt: dict[str, Any], ctx: ReadContext, values: dict[str, Any]
    ) -> AutoSaveSettings | None:
        settings, refused = settings_for_resume(ckpt.get("auto_saver_state"), ctx.file)
        if refused:
            ctx.warn(
                f"The checkpoint's auto-save settings are not used: {refused}. Auto-save is off; "
                "call auto_save(interval, save_path=...) to save during the next train()."
            )
        return settings

    def to_config(self, value: AutoSaveSettings, report: cfg.Report) -> dict[str, Any]:
        if not value.enabled:
            return {"model.auto_save": None}
        return {
            "model.auto_save": {
                "interval": value.interval,
                "save_path": value.save_path,
                "name": value.name,
                "overwrite": value.overwrite,
                "every_n_train_steps": value.every_n_train_steps,
                "step_name": value.step_name,
            }
        }

    def from_config(self, args: dict[str, Any]) -> AutoSaveSettings | None:
        given = args.get("model.auto_save")
        if given is None:
            return None
        return AutoSaveSettings.checked(
            given.interval,
            given.save_path,
            given.name,
            bool(given.overwrite),
            given.every_n_train_steps,
            given.step_name,
        )


# ------------------------------------------------------------- train options
class TrainOptionsCodec(Codec):
    """``train()``'s options (files written before they were stored give the defaults)."""

    _MODEL_KEYS = (
        "ema_decay",
        "debug_print_interval",
        "save_on_last_epoch",
        "epoch_train_and_val_pbar",
        "use_amp",
        "steps_per_execution",
    )

    def to_checkpoint(self, value: Any, problems: list[str]) -> dict[str, Any]:
        options = {
            name: getattr(value, name)
            for name in type(value).__dataclass_fields__
            if name != "trainer_kwargs"
        }
        options["trainer_kwargs"] = _refs.encode(
            dict(value.trainer_kwargs), problems, "trainer_kwargs"
        )
        return {"training_options": options}

    def from_checkpoint(
        self, ckpt: dict[str, Any], ctx: ReadContext, values: dict[str, Any]
    ) -> Any:
        stored = dict(ckpt.get("training_options") or {})
        known = {k: v for k, v in stored.items() if k in TrainOptions.__dataclass_fields__}
        try:
            known["trainer_kwargs"] = _refs.decode_kwargs(
                known.get("trainer_kwargs"), "trainer_kwargs", ctx.trust, plain=not ctx.trust
            )
            return TrainOptions.checked(**known)
        except (Unresolvable, TypeError, ValueError) as err:
            ctx.warn(f"Training options not restored: {err}.")
            return None

    def to_config(self, value: Any, report: cfg.Report) -> dict[str, Any]:
        out = {f"model.{k}": getattr(value, k) for k in self._MODEL_KEYS}
        out.update(
            {
                "trainer.check_val_every_n_epoch": max(int(value.validate_every or 0), 1),
                "trainer.accumulate_grad_batches": int(value.gradient_accumulation_steps),
                "trainer.gradient_clip_val": value.gradient_clipping_norm,
                "trainer.gradient_clip_algorithm": "norm" if value.gradient_clipping_norm else None,
                "trainer.enable_progress_bar": bool(value.progress_bar),
            }
        )
        if not value.validate_every:
            out["trainer.limit_val_batches"] = 0
        for key, item in value.trainer_kwargs.items():
            out[f"trainer.{key}"] = cfg.value(item, f"trainer.{key}", report)
        return out

    def from_config(self, args: dict[str, Any]) -> Any:
        trainer = args.get("trainer")
        kwargs = {k: args[f"model.{k}"] for k in self._MODEL_KEYS if f"model.{k}" in args}
        if trainer is not None:
            no_val = getattr(trainer, "limit_val_batches", 1) == 0
            kwargs.update(
                validate_every=0 if no_val else int(trainer.check_val_every_n_epoch or 1),
                gradient_accumulation_steps=int(trainer.accumulate_grad_batches),
                gradient_clipping_norm=trainer.gradient_clip_val,
                progress_bar=trainer.progress_bar_callback is not None,
            )
        return TrainOptions.checked(**kwargs) if kwargs else None


# ------------------------------------------------------------------------ data
class DataCodec(Codec):
    """Datasets are never stored in checkpoints; their loader arguments are, as a record."""

    not_in_checkpoint = "datasets are data, not setup: set_train_loader(...) again after load"

    def __init__(self, role: str):
        self.role = role

    def to_checkpoint(self, value: DataSlot | None, problems: list[str]) -> dict[str, Any]:
        # A record (datasets are never stored): encoded without warnings.
        kwargs = dict(value.loader_kwargs) if value else {}
        kind = value.dataloader_type.value if value else DataLoaderType.STANDARD.value
        return {
            f"{self.role}_loader_kwargs": _refs.encode(kwargs, [], self.role),
            f"{self.role}_dataloader_type": kind,
        }

    def to_config(self, value: DataSlot | None, report: cfg.Report) -> dict[str, Any]:
        if value is None:
            if self.role == "train":
                report.add(
                    "data.init_args.train_dataset", "no training data is set (set_train_loader)"
                )
            return {}
        key = f"data.init_args.{self.role}"
        out = {
            f"data.{self.role}_dataset": cfg.class_spec(value.dataset, f"{key}_dataset", report),
            f"data.{self.role}_loader": cfg.loader_kwargs(
                dict(value.loader_kwargs), value.loader, f"{key}_loader", report
            ),
        }
        if value.dataloader_type is not DataLoaderType.STANDARD:
            out[f"data.{self.role}_dataloader_type"] = value.dataloader_type.value
        return out

    def from_config(self, args: dict[str, Any]) -> DataSlot | None:
        dataset = args.get(f"data.{self.role}_dataset")
        if dataset is None:
            return None
        kwargs = dict(args.get(f"data.{self.role}_loader") or {})
        kind = args.get(f"data.{self.role}_dataloader_type") or DataLoaderType.STANDARD
        return make_slot(dataset, kwargs, self.role, kind)

    def same(self, a: DataSlot | None, b: DataSlot | None) -> bool:
        if a is None or b is None:
            return a is b
        return (
            _same_callable(a.dataset, b.dataset)
            and same_value(dict(a.loader_kwargs), dict(b.loader_kwargs))
            and a.dataloader_type is b.dataloader_type
        )


class LiveOnlyCodec(Codec):
    """Settings about live objects of this process, which neither a file nor a config holds."""

    def __init__(self, reason: str, config_problem: str | None = None, is_set: Any = bool):
        self.not_in_checkpoint = self.not_in_config = reason
        self.config_problem, self.is_set = config_problem, is_set

    def to_config(self, value: Any, report: cfg.Report) -> dict[str, Any]:
        if self.config_problem and self.is_set(value):
            report.add("model", self.config_problem)
        return {}

    def same(self, a: Any, b: Any) -> bool:
        if isinstance(a, tuple) and isinstance(b, tuple):
            return len(a) == len(b) and all(x is y for x, y in zip(a, b))
        return same_value(a, b)


def _model_type(value: Any) -> ModelType:
    return ModelType.parse(getattr(value, "value", value) or ModelType.CLASSIFICATION)


def _plain_kwargs(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"ddp_kwargs must be a dict, got {type(value).__name__}")
    return dict(value)


def _of_kind(kind: type, key: str) -> Any:
    """A reader that takes only a ``kind`` value (what the slot declares), else ``TypeError``."""

    def read(value: Any) -> Any:
        if not isinstance(value, kind):
            raise TypeError(f"{key} must be a {kind.__name__}, got {type(value).__name__}")
        return value

    return read


def _seed(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"seed must be an int, got {value!r}")
    return value


CODECS: dict[str, Codec] = {
    "model": ModelCodec(),
    "model_type": PlainCodec(
        "model_type", "model.model_type", to_plain=lambda v: v.value, from_plain=_model_type
    ),
    "save_model_code": PlainCodec(
        "save_model_code", "model.save_model_code", from_plain=_of_kind(bool, "save_model_code")
    ),
    "model_code": ModelCodeCodec(),
    "optimizer": ComponentCodec(
        "optimizer",
        "model.optimizer",
        lambda: torch.optim.Optimizer,
        "Optimizer",
        "Call set_optimizer(...) (and set_scheduler(...)).",
    ),
    "scheduler": SchedulerCodec(
        "scheduler", "model.scheduler", lambda: object, "Scheduler", "Call set_scheduler(...)."
    ),
    "loss": LossCodec(),
    "metrics": MetricsCodec(),
    "callbacks": CallbacksCodec(),
    "auto_save": AutoSaveCodec(),
    "sde": ComponentCodec("sde", "model.sde", lambda: SDE, "SDE", "Call set_sde(...)."),
    "sampler": ComponentCodec(
        "sampler", "model.sampler", lambda: Sampler, "Sampler", "Call set_sampler(...)."
    ),
    "seed": PlainCodec("seed", "model.seed", from_plain=_seed),
    "training": TrainOptionsCodec(),
    "ddp_kwargs": PlainCodec("ddp_kwargs", "model.ddp_kwargs", from_plain=_plain_kwargs),
    "train_data": DataCodec("train"),
    "val_data": DataCodec("val"),
    "eval_modules": LiveOnlyCodec(
        "they are submodules of this process's model: call keep_eval_on_module(...) again",
        "keep_eval_on_module(...) settings cannot be written in a config",
    ),
    "compile_kwargs": LiveOnlyCodec(
        "a compiled model is this process's: call compile_model(...) again after load",
        "compile_model(...) cannot be written in a config",
        is_set=lambda v: v is not None,
    ),
    "device": DeviceCodec(),
}
