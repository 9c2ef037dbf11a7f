"""Writing a handler's checkpoint: rank 0 writes (atomically), every other rank waits."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .._env.atomic import atomic_save
from .._version import __version__
from ._multi import write_multi_file
from ._state import full_checkpoint, handler_checkpoint

__all__ = ["write_checkpoint", "handler_state", "save_handler", "save_handler_files"]


def _dist_rank_and_barrier() -> tuple[int, Callable[[], Any] | None]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.barrier
    return 0, None


def _on_rank_zero_then_wait(write: Callable[[], Any]) -> None:
    rank, barrier = _dist_rank_and_barrier()
    try:
        if rank == 0:
            write()
    finally:
        if barrier is not None:
            barrier()


def write_checkpoint(checkpoint: dict[str, Any], path: str) -> None:
    """Atomically write an already built checkpoint dict (rank 0 writes, other ranks wait)."""
    _on_rank_zero_then_wait(lambda: atomic_save(checkpoint, str(path)))


def handler_state(handler: Any) -> dict[str, Any]:
    """The complete checkpoint dict of an ``NNHandler`` (what :func:`save_handler` writes)."""
    return full_checkpoint(handler.setup, handler.run_state, handler.runtime)


def save_handler(handler: Any, path: str | os.PathLike[str]) -> None:
    """Write ``handler``'s complete state to ``path`` (atomic; rank 0 writes, others wait)."""

    def write() -> None:
        atomic_save(handler_state(handler), str(path))
        handler.runtime.logger.info("Saved checkpoint %s.", path)

    _on_rank_zero_then_wait(write)


def save_handler_files(handler: Any, directory: str | os.PathLike[str]) -> None:
    """Write ``handler``'s state as a multi-file checkpoint: ``directory/<key>.pth`` per key of
    :func:`handler_checkpoint` plus a manifest (atomic as a whole; rank 0 writes, others wait).

    ``NNHandler.load(directory)`` reads it back; each file alone is readable with
    ``torch.load(path, weights_only=True)``.
    """

    def write() -> None:
        state = handler_checkpoint(handler.setup, handler.run_state, handler.runtime)
        write_multi_file(state, directory, nn_handler_version=__version__)
        handler.runtime.logger.info("Saved multi-file checkpoint %s.", directory)

    _on_rank_zero_then_wait(write)
