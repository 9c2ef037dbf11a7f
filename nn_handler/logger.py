"""``initialize_logger``: a named Python logger for scripts, writing on rank 0 only."""

from __future__ import annotations

import logging
import numbers

from ._env.loggers import add_handlers, check_file_mode
from .enums import LoggingMode
from .utils.ddp import on_rank

__all__ = ["initialize_logger"]


@on_rank(0)
def initialize_logger(
    logger_name: str,
    mode: LoggingMode | str = LoggingMode.CONSOLE,
    filename: str = "NNHandler.log",
    file_mode: str | int = "a",
    level: int = logging.INFO,
) -> logging.Logger | None:
    """The logger ``logger_name`` writing to the console, ``filename`` or both (rank 0 only).

    Records read ``[LEVEL|YYYY-mm-dd HH:MM:SS|name.function:line] message``, as the original
    NNHandler writes them; the first one says that the logger was initialised. ``file_mode`` is
    ``"a"`` (append to ``filename``) or ``"w"`` (start it anew). The documentation's positional
    order ``(logger_name, mode, filename, level)`` also works: a level (an int) in the fourth
    place is read as ``level``. The log file's folder is created when missing. A logger that
    already has handlers is returned as it is, so calling this twice does not double every
    record. Under DDP every rank must call it (it synchronises like :func:`~nn_handler.on_rank`);
    ranks other than 0 get ``None``.

    Raises:
        TypeError: ``logger_name`` is not a non-empty string.
        ValueError: ``mode`` is not a :class:`LoggingMode` (or its name), or ``file_mode`` is
            neither ``"a"`` nor ``"w"``.
    """
    if not isinstance(logger_name, str) or not logger_name:
        raise TypeError(f"logger_name must be a non-empty string, got {logger_name!r}.")
    mode = LoggingMode.parse(mode)
    # int: what mypy knows to be integral; numbers.Integral: NumPy integers too.
    if isinstance(file_mode, (int, numbers.Integral)) and not isinstance(file_mode, bool):
        # initialize_logger(name, mode, filename, logging.DEBUG), as the docs' signature reads
        file_mode, level = "a", int(file_mode)
    file_mode = check_file_mode(file_mode)
    logger = logging.getLogger(logger_name)
    if logger.handlers:
        return logger
    logger.setLevel(level)
    logger.propagate = False
    add_handlers(logger, mode, filename, file_mode)
    logger.info("Logger initialized (mode: %s, level: %s).", mode.name, logging.getLevelName(level))
    return logger
