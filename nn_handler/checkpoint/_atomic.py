"""Atomic checkpoint writes: temp file beside the target, fsync, rename, fsync the directory."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any

import torch

__all__ = ["atomic_save", "remove_quietly"]


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save(obj)`` to ``path``: readers see the old file or the new one, never a part.

    The directory is created if needed. On any failure the temporary file is removed and the file
    already at ``path`` (if any) is left untouched.
    """
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
