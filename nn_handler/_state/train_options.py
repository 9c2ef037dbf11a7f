"""The arguments of the last ``train()`` call, validated: one field of the :class:`Setup`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .component import same_value

__all__ = ["TrainOptions", "check_positive_int"]


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
