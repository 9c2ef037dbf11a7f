"""The configured loss: the callable, its fixed kwargs, and how its result is read."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["LossSpec"]


def _accepts_keyword(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


@dataclass
class LossSpec:
    """A loss callable with the keyword arguments given on every call.

    ``pass_epoch`` sends the current (0-based) epoch as ``epoch=`` when the callable accepts it.
    """

    fn: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    pass_epoch: bool = False

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(
                "loss_fn must be callable (a function or an nn.Module), got "
                f"{type(self.fn).__name__}."
            )
        self._epoch_ok = self.pass_epoch and _accepts_keyword(self.fn, "epoch")
        if self.pass_epoch and not self._epoch_ok:
            warnings.warn(
                f"pass_epoch_to_loss=True but {getattr(self.fn, '__name__', self.fn)!r} has no "
                "'epoch' parameter; the epoch will not be passed.",
                UserWarning,
                stacklevel=3,
            )

    @classmethod
    def quiet(cls, fn: Callable[..., Any], kwargs: dict[str, Any], pass_epoch: bool) -> LossSpec:
        """A spec whose epoch-argument warning was already given (when it was first set)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls(fn, dict(kwargs), bool(pass_epoch))

    def __call__(self, *args: Any, epoch: int = 0) -> torch.Tensor:
        kwargs = dict(self.kwargs, epoch=epoch) if self._epoch_ok else self.kwargs
        value = self.fn(*args, **kwargs)
        if isinstance(value, (tuple, list)):
            if not value:
                raise ValueError("The loss function returned an empty sequence; return a scalar.")
            value = value[0]
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"The loss function must return a scalar tensor (or a tuple starting with one), "
                f"got {type(value).__name__}."
            )
        if value.numel() != 1:
            raise ValueError(
                f"The loss function returned a tensor of shape {tuple(value.shape)}; it must be a "
                "scalar. Reduce it (e.g. reduction='mean') before returning."
            )
        return value.reshape(()) if value.dim() else value
