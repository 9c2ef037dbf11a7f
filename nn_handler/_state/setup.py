"""The one description of a handler's setup: what the user configured, as plain value objects.

``NNHandler``'s setters validate their arguments and write them here; everything else *reads* a
:class:`Setup`: the checkpoint writer and reader, the CLI config writer and the CLI rebuild, the
generated Lightning module. Each field declares, in ``_setup_fields``, how it is
written to and read from a checkpoint and a CLI config (or why it cannot be), so a new setting
is one field and one setter — no reader can forget it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from ..enums import ModelType
from .autosave import AutoSaveSettings
from .component import Component, same_value
from .data import DataSlot
from .loss import LossSpec

__all__ = ["Setup", "TrainOptions", "ReadContext", "check_positive_int"]


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def check_positive_int(name: str, value: Any, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        low = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {low} int, got {value!r}.")
    return value


@dataclass(frozen=True)
class TrainOptions:
    """The arguments of the last ``train()`` call (``epochs`` and ``seed`` excluded)."""

    validate_every: int = 1
    gradient_accumulation_steps: int = 1
    use_amp: bool = False
    gradient_clipping_norm: float | None = None
    ema_decay: float = 0.0
    progress_bar: bool = True
    debug_print_interval: int | None = None
    save_on_last_epoch: bool = True
    epoch_train_and_val_pbar: bool = False
    trainer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    steps_per_execution: int | str = "auto"

    @classmethod
    def checked(cls, **kwargs: Any) -> TrainOptions:
        """Options from ``train()``'s arguments, each validated (``ValueError``/``TypeError``)."""
        options = cls(**kwargs)
        validate = check_positive_int("validate_every", options.validate_every or 0, True)
        check_positive_int("gradient_accumulation_steps", options.gradient_accumulation_steps)
        norm = options.gradient_clipping_norm
        if norm is not None and not (
            isinstance(norm, (int, float))
            and not isinstance(norm, bool)
            and norm > 0
            and math.isfinite(norm)
        ):
            raise ValueError(
                f"gradient_clipping_norm must be a positive number or None, got {norm!r}."
            )
        decay = options.ema_decay
        if not isinstance(decay, (int, float)) or isinstance(decay, bool) or not 0 <= decay < 1:
            raise ValueError(f"ema_decay must be a float in [0, 1), got {decay!r}.")
        if options.debug_print_interval is not None:
            check_positive_int("debug_print_interval", options.debug_print_interval)
        steps = options.steps_per_execution
        if not (steps == "auto" if isinstance(steps, str) else _positive_int(steps)):
            raise ValueError(
                f'steps_per_execution must be "auto" or a positive int, got {steps!r}.'
            )
        if not isinstance(options.trainer_kwargs, Mapping):
            raise TypeError(
                f"trainer_kwargs must be a dict, got {type(options.trainer_kwargs).__name__}."
            )
        return dataclasses.replace(
            options,
            validate_every=validate,
            ema_decay=float(decay),
            use_amp=bool(options.use_amp),
            progress_bar=bool(options.progress_bar),
            save_on_last_epoch=bool(options.save_on_last_epoch),
            epoch_train_and_val_pbar=bool(options.epoch_train_and_val_pbar),
            trainer_kwargs=dict(options.trainer_kwargs),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TrainOptions):
            return NotImplemented
        return all(
            same_value(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)
        )


@dataclass
class ReadContext:
    """What a checkpoint reader needs besides the file's dict.

    Attributes:
        file: the file the dict came from (messages; the auto-save directory check).
        trust: rebuild everything the file names (``trust_checkpoint=True``).
        trust_model_code: execute the saved model source when the class cannot be imported.
        given: objects the user passed to ``load`` (``model_class``, ``loss_fn``, ...).
        skip: field names not to restore (``skip_optimizer=True``, ...).
        warn: how a field that cannot be restored is reported.
    """

    file: str
    warn: Callable[[str], None]
    trust: bool = False
    trust_model_code: bool = False
    given: dict[str, Any] = field(default_factory=dict)
    skip: frozenset[str] = frozenset()


def _codecs() -> Any:
    from .._codecs import (
        fields as _setup_fields,  # the codecs read these types: imported when first needed
    )

    return _setup_fields


@dataclass(frozen=True, eq=False)
class Setup:
    """Everything a user configured on a handler (see the module docstring).

    Fields hold values (classes with keyword arguments, functions, settings), never trained
    state; :class:`RunState` holds what training produced.
    """

    model: Component
    model_type: ModelType = ModelType.CLASSIFICATION
    save_model_code: bool = False
    model_code: str | None = None
    optimizer: Component | None = None
    scheduler: Component | None = None
    loss: LossSpec | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    callbacks: tuple[Any, ...] = ()
    auto_save: AutoSaveSettings = AutoSaveSettings()
    sde: Component | None = None
    sampler: Component | None = None
    seed: int | None = None
    training: TrainOptions = TrainOptions()
    ddp_kwargs: Mapping[str, Any] = field(default_factory=dict)
    train_data: DataSlot | None = None
    val_data: DataSlot | None = None
    eval_modules: tuple[Any, ...] = ()
    compile_kwargs: Mapping[str, Any] | None = None
    device: str = "cpu"

    # ----------------------------------------------------------------- fields
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @staticmethod
    def codec(name: str) -> Any:
        """The reader/writer of field ``name`` (see ``_setup_fields``)."""
        return _codecs().CODECS[name]

    def replace(self, **changes: Any) -> Setup:
        return dataclasses.replace(self, **changes)

    def same_field(self, other: Setup, name: str) -> bool:
        """Whether field ``name`` holds the same value in both setups."""
        return self.codec(name).same(getattr(self, name), getattr(other, name))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Setup):
            return NotImplemented
        return all(self.same_field(other, name) for name in self.field_names())

    __hash__ = None  # type: ignore[assignment]

    # -------------------------------------------------------------- readers
    def to_checkpoint(self, problems: list[str]) -> dict[str, Any]:
        """The checkpoint entries of every field (what cannot be stored goes to ``problems``)."""
        out: dict[str, Any] = {}
        for name in self.field_names():
            out.update(self.codec(name).to_checkpoint(getattr(self, name), problems))
        return out

    @classmethod
    def from_checkpoint(
        cls,
        ckpt: dict[str, Any],
        ctx: ReadContext,
        guard: Callable[[str], AbstractContextManager[Any]] | None = None,
    ) -> Setup:
        """The setup a checkpoint describes; the model field must resolve, others are warned.

        ``guard(field)``, when given, wraps the reading of each field (the loader uses it to
        name the file and the entries in any error).
        """
        values: dict[str, Any] = {}
        for name in cls.field_names():
            codec = cls.codec(name)
            if name in ctx.skip:
                continue
            with guard(name) if guard is not None else nullcontext():
                value = codec.from_checkpoint(ckpt, ctx, values)
            if value is not None or name == "model":
                values[name] = value
        return cls(**values)

    def to_config(self, report: Any) -> dict[str, Any]:
        """Config entries keyed by their place (``"model.loss"``, ``"data.train_dataset"``...)."""
        out: dict[str, Any] = {}
        for name in self.field_names():
            out.update(self.codec(name).to_config(getattr(self, name), report))
        return out

    @classmethod
    def from_config(cls, args: dict[str, Any]) -> Setup:
        """The setup a CLI config describes; ``args`` maps config places to parsed values."""
        values: dict[str, Any] = {}
        for name in cls.field_names():
            value = cls.codec(name).from_config(args)
            if value is not None:
                values[name] = value
        return cls(**values)
