"""A "did you mean ...?" hint for a misspelt name (difflib), shared by errors that list names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["close_match", "did_you_mean"]


def close_match(name: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``name``, or ``None`` when none is close."""
    found = difflib.get_close_matches(name, sorted(set(choices)), n=1)
    return found[0] if found else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` (with the leading space) for the closest choice, else ``""``."""
    match = close_match(name, choices)
    return f" Did you mean {match!r}?" if match else ""
