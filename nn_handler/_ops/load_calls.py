"""The original's loading functions (``nn_handler.checkpointing.loading``): they take the
handler class as their first argument.

Both are ``NNHandler``'s own class methods under the original's module path, nothing more. The
class is recognised by the class methods they call (nothing below the facade imports it).
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["load", "initialize_from_checkpoint"]


_FACADE_METHODS = ("load", "initialize_from_checkpoint", "from_setup")


def _check_class(cls: Any, function: str) -> None:
    if not (inspect.isclass(cls) and all(callable(getattr(cls, m, None)) for m in _FACADE_METHODS)):
        raise TypeError(
            f"{function}'s first argument is the NNHandler class ({function}(NNHandler, ...)), "
            f"got {cls!r}."
        )


def load(NNHandler: Any, path: str | None = None, *args: Any, **kwargs: Any) -> Any:
    """``NNHandler.load(path, ...)``: a handler rebuilt from a single-file or multi-file save.

    ``path`` is required; its default only lets ``load(path)`` (a forgotten class) fail clearly.
    """
    _check_class(NNHandler, "load")
    if path is None:
        raise TypeError("load(NNHandler, path) needs the path of the checkpoint.")
    return NNHandler.load(path, *args, **kwargs)


def initialize_from_checkpoint(NNHandler: Any, *args: Any, **kwargs: Any) -> Any:
    """``NNHandler.initialize_from_checkpoint(...)``: a new handler with weights only."""
    _check_class(NNHandler, "initialize_from_checkpoint")
    return NNHandler.initialize_from_checkpoint(*args, **kwargs)
