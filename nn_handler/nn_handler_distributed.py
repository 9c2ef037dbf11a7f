"""``nn_handler.nn_handler_distributed``: where the original's documentation says ``NNHandler`` is
implemented. It lives in :mod:`nn_handler.handler`; this module re-exports it."""

from .enums import LoggingMode, ModelType
from .handler import NNHandler

__all__ = ["NNHandler", "ModelType", "LoggingMode"]
