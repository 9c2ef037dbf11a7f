"""The handler's Python logger: console and/or file, records from rank 0 only."""

from __future__ import annotations

import itertools
import logging
import os
import sys

from .enums import LoggingMode

_counter = itertools.count()
_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


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
    logger = logging.getLogger(f"nn_handler.NNHandler.{next(_counter)}")
    logger.propagate = False
    logger.setLevel(level)
    if mode is None or rank != 0:
        logger.addHandler(logging.NullHandler())
        logger.disabled = mode is None or rank != 0
        return logger
    mode = LoggingMode.parse(mode)
    formatter = logging.Formatter(_FORMAT)
    if mode in (LoggingMode.CONSOLE, LoggingMode.BOTH):
        stream = logging.StreamHandler(sys.stdout)
        stream.setFormatter(formatter)
        logger.addHandler(stream)
    if mode in (LoggingMode.FILE, LoggingMode.BOTH):
        folder = os.path.dirname(os.fspath(filename))
        if folder:
            os.makedirs(folder, exist_ok=True)
        file = logging.FileHandler(filename, mode=filemode)
        file.setFormatter(formatter)
        logger.addHandler(file)
    return logger
