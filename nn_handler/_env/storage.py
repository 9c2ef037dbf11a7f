"""Where files go: local paths, and fsspec URLs (``memory://``, ``s3://``, ``gs://``, ``file://``).

A plain path never reaches fsspec: it is written and read exactly as before (atomic rename,
fsync, the reader's checks). A ``file://`` URL is turned into its local path first, so it gets
the same guarantees. Any other URL goes to the fsspec file system of its protocol, as Lightning
does (``lightning.fabric.utilities.cloud_io``): a checkpoint is built in memory and written with
one ``open(..., "wb")`` (on object stores one upload, which readers see whole or not at all), and
read by downloading it to a local temporary copy that the usual checks then read.

The few points that touch files call this module; everything else keeps plain paths.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

__all__ = [
    "identity",
    "is_url",
    "local_path",
    "location",
    "location_refused",
    "local_copy",
    "makedirs",
    "naming",
    "folder_of",
    "remove",
    "write_remote",
]


def is_url(path: Any) -> bool:
    """Whether ``path`` is a URL (``protocol://...``), local (``file://``) or not."""
    return isinstance(path, str) and _protocol(path) is not None


def _protocol(path: str) -> str | None:
    head, sep, _ = path.partition("://")
    return head if sep and head and "/" not in head and os.sep not in head else None


def _filesystem(url: str) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(url)


def local_path(path: Any) -> str | None:
    """The local path for ``path`` (a plain path, or a ``file://``/``local://`` URL), or ``None``
    when it lives on another file system."""
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = path.decode()
    if _protocol(path) is None:
        return path
    from fsspec.implementations.local import LocalFileSystem

    fs, inner = _filesystem(path)
    return inner if isinstance(fs, LocalFileSystem) else None


def location(path: Any) -> str:
    """One name per place, to compare and remember files by: an absolute local path (a
    ``file://`` URL becomes its local path), or the store's canonical URL."""
    local = local_path(path)
    if local is not None:
        return os.path.abspath(local)
    fs, inner = _filesystem(os.fspath(path))
    return fs.unstrip_protocol(posixpath.normpath(inner))


def folder_of(place: str) -> str:
    """The folder holding the file a :func:`location` names."""
    return posixpath.dirname(place) if is_url(place) else os.path.dirname(place)


# What a store's ``info`` tells of one write of an object: a new upload gets a new value.
_WRITE_MARKS = (
    "ETag",
    "etag",
    "generation",
    "VersionId",
    "version_id",
    "LastModified",
    "last_modified",
    "updated",
    "mtime",
    "created",
)


def identity(path: Any) -> tuple[Any, ...] | None:
    """The identity of the file now at ``path``, or ``None`` when there is none (no file, or a
    store that tells nothing of its writes).

    Local: ``(device, inode, size, mtime_ns)`` — an atomic write replaces the inode, a rewrite in
    place changes the size or the modification time. A remote store: its size and each of
    ``_WRITE_MARKS`` its ``info`` gives (ETag, generation, modification or creation time), as
    flat ``key, text`` items (plain data that survives a list round trip). A store that gives
    none of them has only the size, too weak to tell two writes apart: ``None``.
    """
    local = local_path(path)
    if local is not None:
        try:
            st = os.stat(local)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    try:
        fs, inner = _filesystem(os.fspath(path))
        fs.invalidate_cache(inner)  # a listing cached before the write would show the old file
        info = fs.info(inner)
    except Exception:  # noqa: BLE001 - every store raises its own kinds
        return None
    if info.get("type", "file") != "file":
        return None
    marks = [
        part for key in _WRITE_MARKS if info.get(key) is not None for part in (key, str(info[key]))
    ]
    return ("size", int(info.get("size") or 0), *marks) if marks else None


def write_remote(url: str, write: Callable[[IO[bytes]], Any], what: str) -> None:
    """``write(handle)`` into memory, then to ``url`` in one ``open(..., "wb")``.

    Raises:
        OSError: naming ``what`` and the URL; what was at ``url`` before is untouched when the
            store writes on close (object stores, ``memory://``).
    """
    buffer = io.BytesIO()
    write(buffer)
    fs, inner = _filesystem(url)
    try:
        fs.makedirs(posixpath.dirname(inner), exist_ok=True)
        with fs.open(inner, "wb") as handle:
            handle.write(buffer.getbuffer())
    except Exception as err:  # noqa: BLE001 - every store raises its own kinds
        raise OSError(f"Could not write {what} {url!r} ({type(err).__name__}: {err})") from err


def makedirs(path: str) -> None:
    """Create the directory ``path`` (local or URL) and its parents, if missing."""
    local = local_path(path)
    if local is not None:
        os.makedirs(local, exist_ok=True)
        return
    fs, inner = _filesystem(path)
    fs.makedirs(inner, exist_ok=True)


def remove(path: str) -> None:
    """Remove the file at the URL ``path``; a missing file is not an error."""
    fs, inner = _filesystem(path)
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(inner)


@contextlib.contextmanager
def local_copy(url: str) -> Iterator[str]:
    """A local temporary copy of the file or directory at ``url`` (removed on exit).

    Raises:
        FileNotFoundError: nothing at ``url``.
    """
    fs, inner = _filesystem(url)
    if not fs.exists(inner):
        raise FileNotFoundError(f"Checkpoint not found: {url!r}.")
    folder = tempfile.mkdtemp(prefix="nn_handler_download_")
    try:
        name = posixpath.basename(inner.rstrip("/")) or "checkpoint"
        target = os.path.join(folder, name)
        if fs.isdir(inner):
            fs.get(inner.rstrip("/") + "/", target + os.sep, recursive=True)
        else:
            fs.get_file(inner, target)
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def naming(url: str, copy: str) -> Iterator[None]:
    """Errors raised inside name ``url`` where they named its local ``copy``."""
    try:
        yield
    except (OSError, ValueError) as err:
        text = str(err)
        if copy not in text:
            raise
        renamed = text.replace(copy, url)
        try:
            new = type(err)(renamed)
        except Exception:  # noqa: BLE001 - an exception type with another signature
            raise err from None
        raise new from None


def location_refused(path: str, checkpoint_file: str) -> str | None:
    """For URLs: why a loaded checkpoint may not choose ``path`` to write to (``None``: it may).

    It may choose the folder it was loaded from, or a place inside it; any other URL, and a
    local path next to a remote checkpoint (or the reverse), is the file's choice of where we
    write, and refused.
    """
    here = posixpath.dirname(checkpoint_file.rstrip("/"))
    there = path.rstrip("/")
    inside = there == here or there.startswith(here + "/")
    if is_url(path) and is_url(checkpoint_file) and inside and ".." not in there.split("/"):
        return None
    return f"{path!r} is not in the place the checkpoint was loaded from ({here!r})"
