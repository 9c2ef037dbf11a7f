"""Clear ``ImportError``s for names the original's documentation mentions but nn_handler has not.

A module of the original's module map sets ``__getattr__ = missing_names(__name__, {...})``:
``from that.module import Name`` then fails with a message naming our equivalent, instead of
Python's bare "cannot import name".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["missing_names"]


def missing_names(module: str, hints: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` raising ``ImportError`` with ``hints[name]`` for those names.

    Other unknown names raise the usual ``AttributeError`` (so ``hasattr`` keeps working for
    them).
    """

    def __getattr__(name: str) -> Any:
        if name in hints:
            # An ImportError, not an AttributeError: Python replaces an AttributeError raised
            # during `from module import name` by its own message, losing the hint.
            raise ImportError(
                f"{module}.{name} does not exist in nn_handler (the original's documentation "
                f"names it, but it has no counterpart here): {hints[name]}",
                name=module,
            )
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
