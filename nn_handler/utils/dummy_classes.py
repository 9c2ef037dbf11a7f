"""No-op stand-ins for mixed precision and weight averaging (``nn_handler.utils.dummy_classes``).

The original fell back to these when ``torch.amp`` or ``torch_ema`` were missing. nn_handler
needs neither (AMP and EMA come from torch and Lightning), but scripts that use the stand-ins
directly keep working: each has the interface of its real counterpart and does nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch

__all__ = ["GradScaler", "autocast", "ExponentialMovingAverage"]


class GradScaler:
    """``torch.amp.GradScaler`` without scaling: ``scale`` returns the loss unchanged."""

    def __init__(self, enabled: bool = False, *args: Any, **kwargs: Any) -> None:
        self._enabled = bool(enabled)

    def scale(self, loss: Any) -> Any:
        return loss

    def step(self, optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale: Any = None) -> None:
        """Nothing to update."""

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Gradients are never scaled, so there is nothing to unscale."""

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore."""


@contextlib.contextmanager
def autocast(device_type: str = "cpu", enabled: bool = False, **kwargs: Any) -> Iterator[None]:
    """A context manager that changes nothing (no mixed precision)."""
    yield


class ExponentialMovingAverage:
    """The interface of ``torch_ema.ExponentialMovingAverage``, keeping no average.

    ``average_parameters()`` leaves the model's own weights in place. For a real EMA, pass
    ``ema_decay`` to ``NNHandler.train``.
    """

    def __init__(self, parameters: Iterable[torch.nn.Parameter], decay: float) -> None:
        self.decay = decay

    def update(self, parameters: Iterable[torch.nn.Parameter] | None = None) -> None:
        """Nothing to update."""

    @contextlib.contextmanager
    def average_parameters(
        self, parameters: Iterable[torch.nn.Parameter] | None = None
    ) -> Iterator[None]:
        yield

    def copy_to(self, parameters: Iterable[torch.nn.Parameter] | None = None) -> None:
        """Nothing to copy."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore."""
