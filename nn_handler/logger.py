"""``initialize_logger``: a named Python logger for scripts, writing on rank 0 only."""

from __future__ import annotations

import logging

from ._logging import add_handlers
from .enums import LoggingMode
from .utils.ddp import on_rank

__all__ = ["initialize_logger"]

_FORMAT = "%(levelname)s - %(asctime)s - %(name)s - %(funcName)s:%(lineno)d - %(message)s"


@on_rank(0)
def initialize_logger(
    logger_name: str,
    mode: LoggingMode | str = LoggingMode.CONSOLE,
    filename: str = "NNHandler.log",
    level: int = logging.INFO,
) -> logging.Logger | None:
    """The logger ``logger_name`` writing to the console, ``filename`` or both (rank 0 only).

    Records carry the level, time, logger name, function and line. The log file's folder is
    created when missing. A logger that already has handlers is returned as it is, so calling
    this twice does not double every record. Under DDP every rank must call it (it synchronises
    like :func:`~nn_handler.on_rank`); ranks other than 0 get ``None``.

    Raises:
        TypeError: ``logger_name`` is not a non-empty string.
        ValueError: ``mode`` is not a :class:`LoggingMode` (or its name).
    """
    if not isinstance(logger_name, str) or not logger_name:
        raise TypeError(f"logger_name must be a non-empty string, got {logger_name!r}.")
    mode = LoggingMode.parse(mode)
    logger = logging.getLogger(logger_name)
    if logger.handlers:
        return logger
    logger.setLevel(level)
    logger.propagate = False
    add_handlers(logger, mode, filename, "a", _FORMAT)
    return logger
