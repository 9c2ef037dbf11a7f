"""The ``Sampler`` base class for custom sampling from generative models."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

__all__ = ["Sampler"]


class Sampler(ABC):
    """Draws samples from a trained generative model.

    Subclasses implement :meth:`sample`; :meth:`save`/:meth:`load` carry any state through
    handler checkpoints (``load`` receives the dict ``save`` returned, as one argument).
    """

    @abstractmethod
    def sample(self, N: int, device: torch.device | str, **kwargs: Any) -> Any:
        """Return ``N`` samples on ``device``."""

    def save(self) -> dict[str, Any]:
        """The sampler's state (default: none)."""
        return {}

    def load(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook, not abstract
        """Restore :meth:`save`'s state (default: nothing to restore)."""
