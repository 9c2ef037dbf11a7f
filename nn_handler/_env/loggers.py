"""Python loggers for the handler and for user scripts: console and/or file, rank 0 only."""

from __future__ import annotations

import itertools
import logging
import os
import sys

from ..enums import LoggingMode

__all__ = [
    "LOG_FORMAT",
    "LOG_DATEFMT",
    "make_logger",
    "add_handlers",
    "check_file_mode",
    "release_logger",
]

_counter = itertools.count()
# The original NNHandler's record layout, for the handler's logger and ``initialize_logger``:
# ``[INFO|2026-01-31 12:00:00|name.function:42] message``.
LOG_FORMAT = "[%(levelname)s|%(asctime)s|%(name)s.%(funcName)s:%(lineno)d] %(message)s"
LOG_DATEFMT = "%Y-%m-%d %H:%M:%S"
_FILE_MODES = ("a", "w")


def check_file_mode(file_mode: object, name: str = "file_mode") -> str:
    """``file_mode`` if it is ``"a"`` (append) or ``"w"`` (overwrite).

    Raises:
        ValueError: any other value.
    """
    if not isinstance(file_mode, str) or file_mode not in _FILE_MODES:
        raise ValueError(
            f"{name} must be 'a' (append to the log file) or 'w' (overwrite it), got {file_mode!r}."
        )
    return file_mode


def add_handlers(
    logger: logging.Logger,
    mode: LoggingMode | str,
    filename: str,
    filemode: str = "a",
) -> None:
    """Give ``logger`` a stdout handler and/or a file handler, as ``mode`` says, both writing
    :data:`LOG_FORMAT`.

    The log file's folder is created when missing.
    """
    mode = LoggingMode.parse(mode)
    formatter = logging.Formatter(LOG_FORMAT, LOG_DATEFMT)
    if mode in (LoggingMode.CONSOLE, LoggingMode.BOTH):
        stream = logging.StreamHandler(sys.stdout)
        stream.setFormatter(formatter)
        logger.addHandler(stream)
    if mode in (LoggingMode.FILE, LoggingMode.BOTH):
        folder = os.path.dirname(os.path.abspath(os.fspath(filename)))
        os.makedirs(folder, exist_ok=True)
        file = logging.FileHandler(filename, mode=filemode)
        file.setFormatter(formatter)
        logger.addHandler(file)


def make_logger(
    mode: LoggingMode | str | None,
    filename: str,
    filemode: str,
    level: int,
    rank: int,
) -> logging.Logger:
    """Return a logger private to one handler.

    Each handler gets its own logger name so two handlers never share handlers (SPEC §6.6).
    Ranks other than 0, and ``mode=None``, get a logger that drops every record.
    """
    check_file_mode(filemode, "logger_filemode")
    logger = logging.getLogger(f"nn_handler.NNHandler.{next(_counter)}")
    logger.propagate = False
    logger.setLevel(level)
    if mode is None or rank != 0:
        logger.addHandler(logging.NullHandler())
        logger.disabled = mode is None or rank != 0
        return logger
    add_handlers(logger, mode, filename, filemode)
    return logger


def release_logger(logger: logging.Logger) -> None:
    """Close and remove ``logger``'s handlers and forget its name (its log file is closed).

    For the private logger of a handler that no longer exists: without this, every handler
    created in a process would keep its log file open and its logger registered until exit.
    """
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    registry = logging.Logger.manager.loggerDict
    if registry.get(logger.name) is logger:
        registry.pop(logger.name, None)
