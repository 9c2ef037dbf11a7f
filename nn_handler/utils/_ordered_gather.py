"""Distributed ``predict``: strided shards per rank, outputs gathered on rank 0 in dataset order.

Rank ``r`` of ``W`` predicts dataset positions ``r, r + W, r + 2W, ...`` (no padding, so nothing is
predicted twice). Rank 0 gathers every rank's outputs, puts the samples back in dataset order and
cuts them into batches as the user's loader would have (its ``batch_size``, ``drop_last``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sized
from typing import Any, cast

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

__all__ = ["shard_for_predict", "gather_predictions"]


def batch_sizes(loader: DataLoader, n: int) -> list[int]:
    """Sizes of the batches ``loader`` yields over ``n`` samples in order."""
    if loader.batch_size is None:
        if loader.batch_sampler is None:
            return [1] * n
        return [len(b) for b in loader.batch_sampler]
    size = loader.batch_size
    sizes = [size] * (n // size)
    if n % size and not loader.drop_last:
        sizes.append(n % size)
    return sizes


def shard_for_predict(loader: DataLoader, world_size: int, rank: int) -> DataLoader:
    """A loader over this rank's strided share of ``loader.dataset``, in dataset order."""
    n = len(cast(Sized, loader.dataset))  # map-style: predict has taken its len already
    size = loader.batch_size or max(batch_sizes(loader, n) or [1])
    return DataLoader(
        loader.dataset,
        batch_size=size,
        sampler=list(range(rank, n, world_size)),
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        worker_init_fn=loader.worker_init_fn,
    )


def _leaves(data: Any) -> list[Any]:
    if isinstance(data, (list, tuple)):
        return [leaf for item in data for leaf in _leaves(item)]
    if isinstance(data, dict):
        return [leaf for item in data.values() for leaf in _leaves(item)]
    return [data]


def _per_sample(data: Any) -> bool:
    """Every leaf is a tensor with the same (batch) leading dimension."""
    leaves = _leaves(data)
    if not leaves or not all(isinstance(x, torch.Tensor) and x.dim() > 0 for x in leaves):
        return False
    return len({x.shape[0] for x in leaves}) == 1


def _cat(parts: list[Any]) -> Any:
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts)
    if isinstance(first, (list, tuple)):
        return type(first)(_cat([p[i] for p in parts]) for i in range(len(first)))
    return {k: _cat([p[k] for p in parts]) for k in first}


def _take(data: Any, index: torch.Tensor | slice) -> Any:
    if isinstance(data, torch.Tensor):
        return data[index]
    if isinstance(data, (list, tuple)):
        return type(data)(_take(x, index) for x in data)
    return {k: _take(v, index) for k, v in data.items()}


def gather_predictions(
    local: list[Any], sizes: list[int], world_size: int, rank: int
) -> list[Any] | None:
    """Rank 0: the batch outputs of every rank in dataset order, cut into ``sizes``; else None.

    ``local`` is this rank's list of batch outputs (on the CPU). Outputs that are not per-sample
    tensors cannot be reordered; they come back rank by rank, with a warning.
    """
    splittable = all(_per_sample(out) for out in local)
    payload = (splittable, _cat(local) if splittable and local else None, local)
    box: list[Any] | None = [None] * world_size if rank == 0 else None
    dist.gather_object(payload, box, dst=0)
    if rank != 0:
        return None
    assert box is not None  # rank 0 gathered every rank's part
    if not all(ok for ok, _, _ in box):
        warnings.warn(
            "predict under DDP: the model outputs are not tensors with a batch dimension, so "
            "they cannot be put back in dataset order; they are returned rank by rank.",
            RuntimeWarning,
            stacklevel=3,
        )
        return [out for _, _, outs in box for out in outs]
    n = sum(sizes)
    chunks, order = [], []
    for r, (_, data, _) in enumerate(box):
        if data is not None:
            chunks.append(data)
            order.append(torch.arange(r, r + world_size * len(_leaves(data)[0]), world_size))
    if not chunks:
        return []
    positions = torch.cat(order)
    merged = _take(_cat(chunks), torch.argsort(positions))
    merged = _take(merged, slice(0, n))  # drop_last: samples past the last full batch
    out, start = [], 0
    for size in sizes:
        out.append(_take(merged, slice(start, start + size)))
        start += size
    return out
