"""The handler's logger as a picklable description, for processes started by a launcher.

A ``logging.Logger`` pickles by name only: in a process started with ``spawn`` the handler's
logger exists but has none of its handlers, so rank 0 would log nothing. :class:`LoggerSpec`
records where the logger writes, and rebuilds that in the worker. Files are reopened for
appending, never truncated: the main process may have written to them already.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

__all__ = ["LoggerSpec"]


@dataclass(frozen=True)
class _Output:
    kind: str  # "stdout", "stderr" or "file"
    level: int
    fmt: str | None
    datefmt: str | None
    path: str | None = None


@dataclass(frozen=True)
class LoggerSpec:
    """Where a logger writes: its level, and its console and file handlers.

    Attributes:
        name: the logger's name.
        level: the logger's level.
        disabled: whether it drops every record.
        propagate: whether records also go to the parent loggers.
        outputs: the handlers that can be rebuilt elsewhere (others are left out).
    """

    name: str
    level: int
    disabled: bool
    propagate: bool
    outputs: tuple[_Output, ...]

    @classmethod
    def of(cls, logger: logging.Logger) -> LoggerSpec:
        """Describe ``logger`` as it is now."""
        outputs = []
        for handler in logger.handlers:
            formatter = handler.formatter
            fmt = formatter._fmt if formatter is not None else None
            datefmt = formatter.datefmt if formatter is not None else None
            if isinstance(handler, logging.FileHandler):
                outputs.append(_Output("file", handler.level, fmt, datefmt, handler.baseFilename))
            elif isinstance(handler, logging.StreamHandler):
                stream = getattr(handler, "stream", None)
                kind = {id(sys.stdout): "stdout", id(sys.stderr): "stderr"}.get(id(stream))
                if kind is not None:
                    outputs.append(_Output(kind, handler.level, fmt, datefmt))
        return cls(logger.name, logger.level, logger.disabled, logger.propagate, tuple(outputs))

    def apply(self, rank: int) -> logging.Logger:
        """Make this process's logger of that name write as described; silent unless rank 0.

        A logger that still has handlers (a forked process inherits them) keeps them.
        """
        logger = logging.getLogger(self.name)
        logger.propagate = self.propagate
        logger.setLevel(self.level)
        if rank != 0:
            logger.disabled = True
            return logger
        logger.disabled = self.disabled
        if logger.handlers:
            return logger
        for out in self.outputs:
            if out.kind == "file":
                assert out.path is not None  # `of` records every file handler's path
                handler: logging.Handler = logging.FileHandler(out.path, mode="a")
            else:
                handler = logging.StreamHandler(getattr(sys, out.kind))
            handler.setLevel(out.level)
            if out.fmt is not None:
                handler.setFormatter(logging.Formatter(out.fmt, out.datefmt))
            logger.addHandler(handler)
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())
        return logger
