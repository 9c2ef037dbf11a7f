"""The original's ``nn_handler.utils.enums``: the enumerations live in :mod:`nn_handler.enums`."""

from ..enums import DataLoaderType, LoggingMode, ModelType

__all__ = ["ModelType", "LoggingMode", "DataLoaderType"]
