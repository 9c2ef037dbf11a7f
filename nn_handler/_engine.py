"""The facade's one way into the engine (``adapters/``, where Lightning is imported).

:func:`engine` imports ``nn_handler.adapters.api`` the first time a method needs it: the core
imports neither Lightning nor ``adapters/`` at module level, so ``import nn_handler`` and
``NNHandler(...)`` stay light, and the engine depends on the core, never the other way round.
``adapters/api.py`` lists what the core may call there.
"""

from __future__ import annotations

from types import ModuleType

__all__ = ["engine"]


def engine() -> ModuleType:
    """The engine's API module, ``nn_handler.adapters.api`` (imported on first use)."""
    from .adapters import api

    return api
