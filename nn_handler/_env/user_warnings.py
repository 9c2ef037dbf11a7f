"""Warnings attributed to the user's line, however deep in nn_handler they are raised.

A fixed ``stacklevel`` is right for one call path only: ``resolve_device`` is reached from
``NNHandler(...)``, from ``handler.sample(...)`` and from a user's own ``_resolve_device(...)``
call, each at another depth (one frame too far shows as ``sys:1``). :func:`warn_user` counts the
nn_handler frames instead.
"""

from __future__ import annotations

import sys
import warnings

__all__ = ["warn_user"]

_PACKAGE = __name__.partition(".")[0]


def _ours(module: str) -> bool:
    return module == _PACKAGE or module.startswith(_PACKAGE + ".")


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` at the first frame outside nn_handler."""
    level = 2  # the caller of this function
    frame = sys._getframe(1)
    while frame.f_back is not None and _ours(frame.f_globals.get("__name__", "")):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
