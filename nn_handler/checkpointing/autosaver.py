"""Compatibility module: keeps the original's path ``nn_handler.checkpointing.autosaver``.

Re-exports only. The rules and :func:`auto_save_epoch` live in ``nn_handler/_ops/auto_save.py``;
the :class:`AutoSaver` (a Lightning callback, run by ``NNHandler.train``) in
``adapters/hooks/autosaver.py``, imported on first use so that this module loads no Lightning.
"""

from __future__ import annotations

from typing import Any

from .._ops.auto_save import auto_save_epoch, auto_save_name, should_auto_save

# AutoSaver is resolved by __getattr__ below.
__all__ = ["AutoSaver", "auto_save_epoch", "auto_save_name", "should_auto_save"]  # noqa: F822


def __getattr__(name: str) -> Any:
    if name == "AutoSaver":
        from ..adapters.hooks.autosaver import AutoSaver

        return AutoSaver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
