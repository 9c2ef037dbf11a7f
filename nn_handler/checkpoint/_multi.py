"""The multi-file checkpoint: a directory with one file per checkpoint key and a JSON manifest.

Each ``<key>.pth`` holds that key's value exactly as the single file would, written with
``torch.save`` and readable by ``torch.load(weights_only=True)``. ``nn_handler_checkpoint.json``
marks the directory as one checkpoint (so ``NNHandler.load(dir)`` never mistakes it for a folder
of checkpoints) and lists the files with their sizes.

Writing never leaves a half-replaced checkpoint: the files are written into a fresh sibling
directory (named like the atomic writer's temporary files, and removed like them when a killed
save leaves it: ``_tempfiles``), which then takes the target's name; an older checkpoint there is
moved aside first and deleted last (a crash between the two renames leaves it as
``.<name>.old-*`` beside the target).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from typing import Any

from .._env import storage as _storage
from .._env.atomic import _fsync_directory, _umask, atomic_save
from .._env.tempfiles import remove_stale_temp_files, temp_prefix
from . import _read
from ._format import MANIFEST

__all__ = ["MANIFEST", "is_multi_file", "read_multi_file", "write_multi_file"]

_FORMAT = "nn_handler.multi_file"
_VERSION = 1
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def is_multi_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory written as one multi-file checkpoint."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, MANIFEST))


def _file_name(key: Any) -> str:
    if not isinstance(key, str) or not _SAFE_NAME.match(key):
        raise ValueError(
            f"Checkpoint key {key!r} cannot be a file name (use letters, digits, '_', '.', '-')."
        )
    return f"{key}.pth"


def _write_manifest(directory: str, manifest: dict[str, Any]) -> None:
    path = os.path.join(directory, MANIFEST)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())


def write_multi_file(state: dict[str, Any], directory: str | os.PathLike, **info: Any) -> None:
    """Write ``state`` as a multi-file checkpoint at ``directory`` (replacing an older one).

    ``info`` (JSON values, e.g. ``nn_handler_version``) goes into the manifest.

    Raises:
        NotADirectoryError: ``directory`` is a file.
        FileExistsError: ``directory`` holds something that is not a multi-file checkpoint.
        ValueError: a key cannot be a file name.
        OSError: the write failed; whatever was at ``directory`` is intact.
    """
    local = _storage.local_path(directory)
    if local is None:
        raise ValueError(
            f"{directory!r}: multi-file checkpoints are written to a local disk (the folder is "
            "renamed into place); save(path) writes one file to any fsspec URL."
        )
    target = os.path.abspath(local)
    if os.path.isfile(target):
        raise NotADirectoryError(
            f"{target!r} is a file; a multi-file checkpoint is a directory. Pass a directory "
            "path, or save with single_file=True."
        )
    if os.path.isdir(target) and os.listdir(target) and not is_multi_file(target):
        raise FileExistsError(
            f"{target!r} exists and is not a multi-file NNHandler checkpoint (no {MANIFEST}); "
            "it is left untouched. Choose a new directory."
        )
    files = {key: _file_name(key) for key in state}
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    # Named as the atomic writer's temporary files are, so a killed save's staging directory is
    # recognised (host and pid) and removed by a later save, as those are.
    remove_stale_temp_files(parent)
    staging = tempfile.mkdtemp(prefix=temp_prefix(target), suffix=".tmp", dir=parent)
    try:
        sizes = {}
        for key, file in files.items():
            atomic_save(state[key], os.path.join(staging, file))
            sizes[key] = os.path.getsize(os.path.join(staging, file))
        manifest = {
            "format": _FORMAT,
            "format_version": _VERSION,
            "files": files,
            "sizes": sizes,
            **info,
        }
        _write_manifest(staging, manifest)
        os.chmod(staging, 0o777 & ~_umask())
        old = None
        if os.path.isdir(target):
            old = os.path.join(parent, f".{name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(target, old)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_directory(parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _manifest(directory: str) -> dict[str, Any]:
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path!r} is not a readable checkpoint manifest ({err}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise ValueError(f"{path!r} is not an NNHandler multi-file checkpoint manifest.")
    if manifest.get("format_version") != _VERSION:
        raise ValueError(
            f"{path!r} has multi-file format version {manifest.get('format_version')!r}; this "
            f"nn_handler reads version {_VERSION}. Upgrade nn_handler to read it."
        )
    files, sizes = manifest.get("files"), manifest.get("sizes") or {}
    if not isinstance(files, dict) or not isinstance(sizes, dict):
        raise ValueError(f"{path!r} is a damaged manifest: 'files' must map keys to file names.")
    for key, file in files.items():
        # Only plain names inside the directory: a manifest must not point anywhere else.
        if not isinstance(file, str) or file != _file_name(key):
            raise ValueError(f"{path!r} is a damaged manifest: {key!r} -> {file!r}.")
    return manifest


def _inside(directory: str, path: str) -> None:
    """Refuse a file of the checkpoint that is a link or resolves outside ``directory``.

    A link would make the checkpoint's weights (and anything else) come from another place.
    """
    if os.path.islink(path) or os.path.realpath(path) != os.path.join(
        os.path.realpath(directory), os.path.basename(path)
    ):
        raise ValueError(
            f"{path!r} is a symbolic link or lies outside the checkpoint directory "
            f"{directory!r}; a multi-file checkpoint holds only its own regular files. Copy "
            "the real file into the directory if you mean to use it."
        )


def read_multi_file(
    directory: str | os.PathLike, map_location: Any = "cpu", scan: bool = True
) -> dict[str, Any]:
    """The checkpoint dict of a multi-file checkpoint, every file read as the single file is
    (``weights_only=True``, CRC-checked, and with ``scan`` its content checked, see ``_scan``).

    Raises:
        FileNotFoundError: a file the manifest lists is missing.
        ValueError: a damaged manifest, a file of the wrong size, a symbolic link or a file
            outside the directory, a corrupted file, or a format newer than this version reads.
    """
    directory = os.fspath(directory)
    _inside(directory, os.path.join(directory, MANIFEST))
    manifest = _manifest(directory)
    state: dict[str, Any] = {}
    for key, file in manifest["files"].items():
        path = os.path.join(directory, file)
        if os.path.lexists(path):
            _inside(directory, path)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"Multi-file checkpoint {directory!r} lists {file!r} for {key!r}, which is missing."
            )
        expected = manifest["sizes"].get(key)
        if expected is not None and os.path.getsize(path) != expected:
            raise ValueError(
                f"{path!r} has {os.path.getsize(path)} bytes but the manifest says {expected}: "
                "the file was truncated or replaced."
            )
        state[key] = _read.read_file(path, map_location, scan=scan)
    _read.check_format(state, repr(directory))
    return state
