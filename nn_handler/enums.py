"""Enumerations of the public API: what a model learns, where log records go, how data is read."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

__all__ = ["ModelType", "LoggingMode", "DataLoaderType", "InvalidEnumValue"]


class InvalidEnumValue(ValueError, TypeError):
    """A value that names no member of the enum.

    Both a ``ValueError`` (what ``from_string`` documents) and a ``TypeError`` (what ``parse``
    documents for input it cannot convert), so ``except`` clauses written for either work.
    """


_E = TypeVar("_E", bound="_ParsableEnum")


class _ParsableEnum(Enum):
    @classmethod
    def _valid(cls) -> str:
        return ", ".join(repr(m.value) for m in cls)

    @classmethod
    def from_string(cls: type[_E], s: str) -> _E:
        """The member whose value or name is ``s`` (case-insensitive, surrounding spaces ignored).

        Raises:
            InvalidEnumValue: ``s`` is not a string or names no member; the message lists the
                valid values.
        """
        if not isinstance(s, str):
            raise InvalidEnumValue(
                f"{cls.__name__}.from_string expects a str, got {type(s).__name__} ({s!r}); "
                f"valid values are {cls._valid()}."
            )
        key = s.strip().lower()
        for member in cls:
            if key in (member.name.lower(), str(member.value).lower()):
                return member
        raise InvalidEnumValue(f"Unknown {cls.__name__} {s!r}; valid values are {cls._valid()}.")

    @classmethod
    def parse(cls: type[_E], value: object) -> _E:
        """The member for ``value``: a member, its name or value as a string, or a member of
        another enum whose value is such a string.

        Raises:
            InvalidEnumValue: ``value`` names no member; the message lists the valid values.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, Enum) and isinstance(value.value, str):
            value = value.value
        if isinstance(value, str):
            return cls.from_string(value)
        raise InvalidEnumValue(
            f"Cannot convert {value!r} ({type(value).__name__}) to {cls.__name__}; valid values "
            f"are {cls._valid()} (or a {cls.__name__} member)."
        )


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


class DataLoaderType(_ParsableEnum):
    """How ``set_train_loader``/``set_val_loader`` read a dataset (see docs/data.md).

    ``STANDARD``: the whole dataset, split between the ranks under DDP. ``RANK_CACHED``: the
    dataset already holds only this rank's shard (e.g. a ``RankMemCachedH5Dataset``); every rank
    reads all of it, reshuffled each epoch, and nothing is split again.
    """

    STANDARD = "standard"
    RANK_CACHED = "rank_cached"
