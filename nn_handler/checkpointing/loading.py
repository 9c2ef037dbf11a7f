"""The original's loading functions: they take the handler class as their first argument."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ..checkpoint import initialize_from_checkpoint as _weights_only
from ..checkpoint import load_handler

__all__ = ["load", "initialize_from_checkpoint"]


def _check_class(cls: Any, function: str) -> None:
    from ..handler import NNHandler as Handler

    if not (inspect.isclass(cls) and issubclass(cls, Handler)):
        raise TypeError(
            f"{function}'s first argument is the NNHandler class ({function}(NNHandler, ...)), "
            f"got {cls!r}."
        )


def load(
    NNHandler: type,
    path: str | None = None,
    device: Any = None,
    strict_load: bool = False,
    skip_optimizer: bool = False,
    skip_scheduler: bool = False,
    skip_history: bool = False,
    skip_callbacks: bool = False,
    skip_sampler_sde: bool = False,
    skip_ema: bool = False,
    **kwargs: Any,
) -> Any:
    """``NNHandler.load(path, ...)``: a handler rebuilt from a single-file or multi-file save.

    ``path`` is required; its default only lets ``load(path)`` (a forgotten class) fail clearly.
    """
    _check_class(NNHandler, "load")
    if path is None:
        raise TypeError("load(NNHandler, path) needs the path of the checkpoint.")
    return load_handler(
        NNHandler,
        path,
        device=device,
        strict_load=strict_load,
        skip_optimizer=skip_optimizer,
        skip_scheduler=skip_scheduler,
        skip_history=skip_history,
        skip_callbacks=skip_callbacks,
        skip_sampler_sde=skip_sampler_sde,
        skip_ema=skip_ema,
        **kwargs,
    )


def initialize_from_checkpoint(
    NNHandler: type,
    checkpoint_path: str,
    model_class: type[nn.Module],
    model_type: Any = None,
    device: Any = None,
    strict_load: bool = True,
    **model_kwargs: Any,
) -> Any:
    """``NNHandler.initialize_from_checkpoint(...)``: a new handler with weights only."""
    _check_class(NNHandler, "initialize_from_checkpoint")
    return _weights_only(
        checkpoint_path,
        model_class,
        model_type=model_type,
        device=device,
        strict_load=strict_load,
        **model_kwargs,
    )
