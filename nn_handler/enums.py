"""Enumerations of the public API: what a model learns and where log records go."""

from __future__ import annotations

from enum import Enum

__all__ = ["ModelType", "LoggingMode"]


class _ParsableEnum(Enum):
    @classmethod
    def parse(cls, value: object) -> _ParsableEnum:
        """Return the member for ``value`` (a member or a case-insensitive name/value)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().lower()
            for member in cls:
                if key in (member.name.lower(), str(member.value).lower()):
                    return member
        valid = ", ".join(repr(m.value) for m in cls)
        raise ValueError(f"Unknown {cls.__name__} {value!r}; valid values are {valid}.")


class ModelType(_ParsableEnum):
    """How batches are read and the loss is called (see docs/nn_handler.md)."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    GENERATIVE = "generative"
    SCORE_BASED = "score_based"


class LoggingMode(_ParsableEnum):
    """Destination of the handler's log records."""

    CONSOLE = "console"
    FILE = "file"
    BOTH = "both"
