"""Enumerations of the public API: what a model learns, where log records go, how data is read."""

from __future__ import annotations

from enum import Enum

__all__ = ["ModelType", "LoggingMode", "DataLoaderType"]


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

    @classmethod
    def from_string(cls, value: str) -> _ParsableEnum:
        """The member named by ``value`` (case-insensitive); the original's spelling of parse."""
        return cls.parse(value)


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
