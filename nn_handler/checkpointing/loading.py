"""The original's loading functions: they take the handler class as their first argument.

Both are ``NNHandler``'s own class methods under the original's module path, nothing more.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..handler import NNHandler as _Handler

__all__ = ["load", "initialize_from_checkpoint"]


def _check_class(cls: Any, function: str) -> None:
    from ..handler import NNHandler as Handler

    if not (inspect.isclass(cls) and issubclass(cls, Handler)):
        raise TypeError(
            f"{function}'s first argument is the NNHandler class ({function}(NNHandler, ...)), "
            f"got {cls!r}."
        )


def load(NNHandler: type[_Handler], path: str | None = None, *args: Any, **kwargs: Any) -> Any:
    """``NNHandler.load(path, ...)``: a handler rebuilt from a single-file or multi-file save.

    ``path`` is required; its default only lets ``load(path)`` (a forgotten class) fail clearly.
    """
    _check_class(NNHandler, "load")
    if path is None:
        raise TypeError("load(NNHandler, path) needs the path of the checkpoint.")
    return NNHandler.load(path, *args, **kwargs)


def initialize_from_checkpoint(NNHandler: type[_Handler], *args: Any, **kwargs: Any) -> Any:
    """``NNHandler.initialize_from_checkpoint(...)``: a new handler with weights only."""
    _check_class(NNHandler, "initialize_from_checkpoint")
    return NNHandler.initialize_from_checkpoint(*args, **kwargs)
