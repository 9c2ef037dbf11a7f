"""The original's saving functions (``nn_handler.checkpointing.saving``), writing nn_handler's
safe, atomic checkpoint files.

``save_single_file`` writes one file; ``save_multi_files`` and ``save_multi_from_single`` write
one file per key, named ``<path without extension>_<key><extension>``. Every file is readable with
``torch.load(path, weights_only=True)``. None of them synchronises ranks: under DDP call them on
one rank (see :func:`nn_handler.on_rank`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from .._env.atomic import atomic_save
from ..checkpoint._loadable import check_loadable
from ..checkpoint._restore import read_checkpoint

__all__ = [
    "DEFAULT_KEYS",
    "part_path",
    "save_single_file",
    "save_multi_files",
    "save_multi_from_single",
]

#: Keys written by the multi-file functions when ``keys_to_save`` is not given.
DEFAULT_KEYS = ("model_state_dict", "optimizer_state_dict", "model_kwargs")

_log = logging.getLogger("nn_handler.checkpointing")


def _logger(nn_handler: Any) -> logging.Logger:
    return getattr(nn_handler, "logger", None) or _log


def _rank(nn_handler: Any) -> int:
    """The rank named in log lines: the handler's (``runtime.dist``), 0 without a handler."""
    return int(nn_handler.runtime.dist.rank) if nn_handler is not None else 0


def _check_path(path: Any) -> str:
    if not isinstance(path, (str, bytes)) and not hasattr(path, "__fspath__"):
        raise TypeError(f"path must be a file path, got {type(path).__name__}.")
    return os.fsdecode(os.fspath(path))


def part_path(path: str, key: str) -> str:
    """The file of ``key`` for base ``path``: ``models/m.pth`` → ``models/m_<key>.pth``."""
    root, ext = os.path.splitext(path)
    return f"{root}_{key}{ext or '.pth'}"


def _keys(state: Mapping[str, Any], keys_to_save: Iterable[str] | None) -> list[str]:
    if isinstance(keys_to_save, str):
        raise TypeError(f"keys_to_save must be a list of keys, got the string {keys_to_save!r}.")
    keys = list(DEFAULT_KEYS if keys_to_save is None else keys_to_save)
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise ValueError(f"keys_to_save must be a non-empty list of key names, got {keys!r}.")
    missing = [k for k in keys if k not in state]
    if missing:
        raise KeyError(f"The state has no key(s) {missing}; its keys are {sorted(state)}.")
    return keys


def _write_parts(
    state: Mapping[str, Any], path: str, keys: list[str], log: logging.Logger, rank: int
) -> list[str]:
    for key in keys:
        check_loadable(state[key], f"state[{key!r}]")
    written = []
    for key in keys:
        target = part_path(path, key)
        try:
            atomic_save(state[key], target)
        except OSError:
            log.error("Rank %d: could not save %r to %s.", rank, key, target)
            raise
        written.append(target)
    log.info("Rank %d: saved %s to %s.", rank, ", ".join(keys), ", ".join(written))
    return written


def save_single_file(nn_handler: Any, state: Mapping[str, Any], path: str) -> None:
    """Write ``state`` (e.g. ``handler.get_state_dict()``) to ``path`` atomically.

    The folder is created when missing; a failed write is logged through ``nn_handler.logger``
    and raised, and leaves any file already at ``path`` intact.

    Raises:
        TypeError: ``state`` is not a dict, or holds something a safe load cannot read.
        OSError: the write failed.
    """
    path = _check_path(path)
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict, got {type(state).__name__}.")
    check_loadable(state)
    log, rank = _logger(nn_handler), _rank(nn_handler)
    try:
        atomic_save(dict(state), path)
    except OSError:
        log.error("Rank %d: could not save the state to %s.", rank, path)
        raise
    log.info("Rank %d: saved the state to %s.", rank, path)


def save_multi_files(
    nn_handler: Any,
    state: Mapping[str, Any],
    path: str,
    keys_to_save: Iterable[str] | None = None,
) -> list[str]:
    """Write each of ``keys_to_save`` of ``state`` to its own file ``<root>_<key><ext>``.

    ``keys_to_save`` defaults to :data:`DEFAULT_KEYS`. Each file holds the key's value alone
    (``torch.load(part, weights_only=True)`` gives it back). Returns the paths written.

    Raises:
        KeyError: a key is not in ``state`` (nothing is written).
        TypeError: a value holds something a safe load cannot read (nothing is written).
        OSError: a write failed.
    """
    path = _check_path(path)
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict, got {type(state).__name__}.")
    keys = _keys(state, keys_to_save)
    return _write_parts(state, path, keys, _logger(nn_handler), _rank(nn_handler))


def save_multi_from_single(path: str, keys_to_save: Iterable[str] | None = None) -> list[str]:
    """Split the single-file checkpoint at ``path`` into ``<root>_<key><ext>`` files.

    The checkpoint is read safely (as ``NNHandler.load`` reads it) and left in place. Returns the
    paths written.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: ``path`` is a directory or not an NNHandler checkpoint.
        KeyError: a key is not in the checkpoint.
    """
    path = _check_path(path)
    if os.path.isdir(path):
        raise ValueError(
            f"{path!r} is a directory; save_multi_from_single needs a checkpoint file."
        )
    state, _ = read_checkpoint(path)
    keys = _keys(state, keys_to_save)
    return _write_parts(state, path, keys, _log, 0)
