"""A dataset, the DataLoader keyword arguments it is read with, and the loader built from them.

Under DDP the loader is this rank's shard from the start (a ``DistributedSampler``), so what
``handler.train_loader`` shows is what training reads; Lightning keeps such loaders as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch.utils.data import DataLoader, Dataset, DistributedSampler

if TYPE_CHECKING:  # pragma: no cover
    from ._dist_env import DistEnv

__all__ = ["DataSlot", "make_slot", "shuffle_seed", "use_shuffle_seed"]


@dataclass
class DataSlot:
    """What ``set_train_loader``/``set_val_loader`` were given, and the loader built from it."""

    dataset: Any
    loader_kwargs: dict[str, Any] = field(default_factory=dict)
    loader: DataLoader | None = None


def shuffle_seed(seed: int | None) -> int:
    """The seed of the training shuffle under DDP: ``seed``, else Lightning's global seed, else 0.

    It must be the same on every rank, or the shards would overlap.
    """
    return int(seed) if seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))


def use_shuffle_seed(loader: Any, seed: int | None) -> None:
    """Give a sharded training loader the shuffle seed known at ``train()`` time."""
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, DistributedSampler) and getattr(sampler, "_nn_handler_shard", False):
        sampler.seed = shuffle_seed(seed)


def _shard(loader: DataLoader, role: str, dist: DistEnv, seed: int | None) -> DataLoader:
    from .adapters.dist_loaders import shard_train_loader, shard_val_loader

    if role == "train":
        return shard_train_loader(loader, dist, shuffle_seed(seed))
    return shard_val_loader(loader, dist)


def make_slot(
    dataset: Any,
    loader_kwargs: dict[str, Any],
    role: str,
    dist: DistEnv | None = None,
    seed: int | None = None,
) -> DataSlot:
    """Build the loader now so bad keyword arguments fail at the call that passed them.

    With a distributed ``dist`` the loader reads this rank's shard (``seed``: the training
    shuffle's seed, see :func:`shuffle_seed`).
    """
    distributed = dist is not None and dist.distributed
    if isinstance(dataset, DataLoader):
        if loader_kwargs:
            raise TypeError(
                f"set_{role}_loader got a DataLoader and loader kwargs {sorted(loader_kwargs)}; "
                "pass a Dataset with kwargs, or the DataLoader alone."
            )
        loader = _shard(dataset, role, dist, seed) if distributed else dataset
        return DataSlot(dataset.dataset, {}, loader)
    if not isinstance(dataset, Dataset) and not hasattr(dataset, "__getitem__"):
        raise TypeError(
            f"set_{role}_loader expects a torch Dataset (or a DataLoader), got "
            f"{type(dataset).__name__}."
        )
    try:
        loader = DataLoader(dataset, **loader_kwargs)
    except TypeError as err:
        raise TypeError(f"Invalid DataLoader arguments for the {role} loader: {err}") from err
    if distributed:
        loader = _shard(loader, role, dist, seed)
    return DataSlot(dataset, dict(loader_kwargs), loader)


def _create_distributed_loader(
    dataset: Any,
    loader_kwargs: dict[str, Any],
    device: Any = None,
    log_fn: Any = None,
    is_eval: bool = False,
) -> tuple[DataLoader, Any]:
    """``(loader, sampler)`` for this rank, as ``set_train_loader`` (``is_eval``:
    ``set_val_loader``) builds it; the original's name. ``device`` and ``log_fn`` are unused."""
    from ._dist_env import detect_distributed

    slot = make_slot(
        dataset, dict(loader_kwargs), "val" if is_eval else "train", detect_distributed(None)
    )
    return slot.loader, slot.loader.sampler
