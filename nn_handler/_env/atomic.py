"""Atomic checkpoint writes: temp file beside the target, fsync, rename, fsync the directory."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from typing import IO, Any

import torch

from . import storage as _storage
from .tempfiles import remove_stale_temp_files, temp_prefix

__all__ = ["atomic_save", "atomic_write", "remove_quietly"]


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save(obj)`` to ``path`` with :func:`atomic_write`."""
    atomic_write(path, lambda handle: torch.save(obj, handle))


def atomic_write(path: str, write: Callable[[IO[bytes]], Any], what: str = "checkpoint") -> None:
    """``write(handle)`` to ``path``: readers see the old file or the new one, never a part.

    The directory is created if needed. On any failure the temporary file is removed and the file
    already at ``path`` (if any) is left untouched; the ``OSError`` raised names the ``what``
    and the path. Temporary files that killed writers left in the directory are removed first
    (see ``_tempfiles``). A URL on another file system than the local one is written by
    :func:`nn_handler._env.storage.write_remote` (``file://`` URLs are local paths here).
    """
    local = _storage.local_path(path)
    if local is None:
        _storage.write_remote(path, write, what)
        return
    path = os.path.abspath(local)
    directory = os.path.dirname(path)
    existed = os.path.lexists(path)
    try:
        os.makedirs(directory, exist_ok=True)
        remove_stale_temp_files(directory)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=directory)
    except OSError as err:
        raise _write_error(path, err, existed, what) from err
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would (umask applied).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        # torch reports a failed write (disk full, I/O error) as RuntimeError from its writer.
        remove_quietly(tmp)
        raise _write_error(path, err, existed, what) from err
    except BaseException:
        remove_quietly(tmp)
        raise
    _fsync_directory(directory)


def _write_error(path: str, err: BaseException, existed: bool, what: str) -> OSError:
    """An ``OSError`` (subclass chosen by errno) that names the path and what it holds."""
    code = getattr(err, "errno", None) or errno.EIO
    reason = getattr(err, "strerror", None) or str(err).strip().splitlines()[0]
    outcome = "the previous file is intact" if existed else "no file was written"
    return OSError(code, f"Could not write {what} {path!r} ({reason}); {outcome}", path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
    local = _storage.local_path(path)
    if local is None:
        _storage.remove(path)
        return
    with contextlib.suppress(FileNotFoundError):
        os.remove(local)
