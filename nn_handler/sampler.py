"""The ``Sampler`` base class for custom sampling from generative models."""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from typing import Any

import torch

__all__ = ["Sampler"]


def _takes_state_positionally(load: Any) -> bool:
    """Whether ``load(self, state)`` takes the state dict as a positional argument."""
    params = list(inspect.signature(load).parameters.values())[1:]  # drop self
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )


def _accept_both_load_forms(load: Any) -> Any:
    """Wrap a subclass's ``load`` so it can be called as ``load(state)`` or ``load(**state)``.

    The original's pages define samplers both ways (``load(self, state_dict)`` and
    ``load(self, **state_dict)``); checkpoints call ``load(state)``.
    """
    positional = _takes_state_positionally(load)

    @functools.wraps(load)
    def wrapper(self: Sampler, *args: Any, **kwargs: Any) -> Any:
        if positional and not args and kwargs:
            return load(self, dict(kwargs))
        if not positional and len(args) == 1 and isinstance(args[0], dict) and not kwargs:
            return load(self, **args[0])
        return load(self, *args, **kwargs)

    return wrapper


class Sampler(ABC):
    """Draws samples from a trained generative model.

    Subclasses implement all three abstract methods: :meth:`sample`, :meth:`save` (the sampler's
    state as a dict of plain data and tensors; ``{}`` when it has none) and :meth:`load` (restores
    that dict). Handler checkpoints store what ``save`` returns and give it back to ``load``, as
    one argument; a ``load(self, **state)`` signature is accepted too.

    Keyword arguments to ``Sampler.__init__`` are accepted and ignored, so subclasses may call
    ``super().__init__(**kwargs)``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        load = cls.__dict__.get("load")
        # A subclass that reuses a wrapped load (``load = Parent.load``) wraps it again: harmless,
        # the signature read through ``__wrapped__`` is the same, so both layers agree.
        if inspect.isfunction(load) and not getattr(load, "__isabstractmethod__", False):
            cls.load = _accept_both_load_forms(load)  # type: ignore[method-assign]  # wrapped

    @abstractmethod
    def sample(self, N: int, device: torch.device | str | None, **kwargs: Any) -> Any:
        """Return ``N`` samples on ``device``."""

    @abstractmethod
    def save(self) -> dict[str, Any]:
        """The sampler's state, a dict that :meth:`load` accepts (``{}`` for none)."""

    @abstractmethod
    def load(self, state_dict: dict[str, Any]) -> Any:
        """Restore the state :meth:`save` returned."""
