"""Checking that a state holds only what ``torch.load(weights_only=True)`` reads back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["check_loadable"]

_LEAVES = (torch.Tensor, str, bytes, int, float, complex, bool, type(None))
_TORCH_VALUES = (torch.Size, torch.dtype, torch.device)


def _first_problem(value: Any, where: str) -> str | None:
    if isinstance(value, _LEAVES) or isinstance(value, _TORCH_VALUES):
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool, type(None), tuple)):
                return f"{where} has a key of type {type(key).__name__}"
            found = _first_problem(item, f"{where}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(value, (list, tuple, set)):
        for i, item in enumerate(value):
            found = _first_problem(item, f"{where}[{i}]")
            if found:
                return found
        return None
    kind = "a class" if isinstance(value, type) else f"a {type(value).__qualname__} object"
    return f"{where} is {kind}"


def check_loadable(value: Any, where: str = "state") -> None:
    """Raise ``TypeError`` when ``value`` holds anything a safe load (no code run) cannot read.

    Classes, functions and arbitrary objects would make the file a pickle that needs code to
    load; nn_handler refuses to write such files.
    """
    problem = _first_problem(value, where)
    if problem:
        raise TypeError(
            f"{problem}: checkpoints hold only tensors, numbers, strings and containers of them, "
            "so that loading never runs code. Build the state with handler.get_state_dict(), "
            "which stores classes and functions as import paths."
        )
