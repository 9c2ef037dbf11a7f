"""Garbage-collection callbacks: Python's collector, and CUDA's cache."""

from __future__ import annotations

import gc
import time
from typing import Any

import torch

from ._common import is_rank_zero, positive_int
from .base import Callback

__all__ = ["SimpleGarbageCollector", "CudaGarbageCollector"]


class SimpleGarbageCollector(Callback):
    """Run ``gc.collect()`` at the end of every ``collect_freq_epoch``-th epoch.

    Args:
        collect_freq_epoch: collect every N epochs.
        verbose: print what was collected (rank 0).
    """

    def __init__(self, collect_freq_epoch: int = 1, verbose: bool = False):
        super().__init__()
        owner = type(self).__name__
        self.collect_freq_epoch = positive_int(owner, "collect_freq_epoch", collect_freq_epoch)
        self.verbose = verbose
        self.collections = 0

    def _due(self, epoch: int) -> bool:
        return (epoch + 1) % self.collect_freq_epoch == 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._due(epoch):
            return
        start = time.perf_counter()
        found = gc.collect()
        self.collections += 1
        if self.verbose and is_rank_zero(self.handler):
            print(
                f"Epoch {epoch + 1}: gc collected {found} objects in "
                f"{time.perf_counter() - start:.3f}s"
            )


class CudaGarbageCollector(SimpleGarbageCollector):
    """Run ``gc.collect()`` and ``torch.cuda.empty_cache()`` every ``collect_freq_epoch`` epochs.

    Does nothing at all when CUDA is not available.

    Args:
        collect_freq_epoch: collect every N epochs.
        verbose: print what was done and CUDA's memory use (rank 0).
    """

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not torch.cuda.is_available() or not self._due(epoch):
            return
        super().on_epoch_end(epoch, logs)
        torch.cuda.empty_cache()
        if self.verbose and is_rank_zero(self.handler):
            allocated = torch.cuda.memory_allocated() / 2**20
            reserved = torch.cuda.memory_reserved() / 2**20
            print(
                f"Epoch {epoch + 1}: CUDA cache emptied ({allocated:.1f} MiB allocated, "
                f"{reserved:.1f} MiB reserved)"
            )
