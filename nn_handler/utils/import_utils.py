"""``nn_handler.utils.import_utils``: import names from an optional dependency, or stand-ins."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

__all__ = ["import_with_fallback"]


def import_with_fallback(
    module_path: str, class_names: Sequence[str], fallback_path: str = "dummy_classes"
) -> tuple[tuple[Any, ...], bool]:
    """Import ``class_names`` from ``module_path``, or the same names from a stand-in module.

    Args:
        module_path: the absolute module to try first (e.g. ``"torch_ema"``).
        class_names: the names to take from it, in the order they are returned.
        fallback_path: the stand-in module, relative to ``nn_handler.utils`` (default
            ``"dummy_classes"``, whose ``GradScaler``, ``autocast`` and
            ``ExponentialMovingAverage`` do nothing), used when ``module_path`` cannot be
            imported.

    Returns:
        ``(objects, found)``: the objects in ``class_names``' order, and whether they came from
        ``module_path`` (``False``: from the stand-in module).
    """
    if isinstance(class_names, str):
        raise TypeError(
            f"class_names must be a list of names, got the string {class_names!r}; "
            f"write [{class_names!r}]."
        )
    try:
        module = importlib.import_module(module_path)
        found = True
    except ImportError:
        module = importlib.import_module(f"{__package__}.{fallback_path}")
        found = False
    return tuple(getattr(module, name) for name in class_names), found
