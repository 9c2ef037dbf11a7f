"""Per-rank DataLoaders under DDP: training shards that honour ``shuffle``, exact validation.

``set_train_loader``/``set_val_loader`` build these when the loader is set, so the handler's
loaders are the shards users see. Lightning's own sampler injection always shuffles training data
and pads validation data with repeated samples (a ``DistributedSampler`` makes every rank's share
equally long). We hand Lightning loaders that already carry a ``DistributedSampler`` subclass,
so it keeps them and adds no second one:

- training: ``DistributedSampler(shuffle=<what the user asked for>)``, same seed on every rank
  (a loader with its own sampler gets Lightning's ``DistributedSamplerWrapper``, shuffled, as
  Lightning would have given it); Lightning's fit loop calls ``set_epoch`` with the global epoch
  before each epoch;
- validation: Lightning's ``UnrepeatedDistributedSampler`` (no padding, shares may differ by one
  sample), so each sample is evaluated exactly once and the epoch values are exact. This is safe
  under DDP: outside training DDP synchronises buffers only on the first forward call, and every
  rank gets at least one sample (otherwise we fall back to padding, with a warning).

A loader over a dataset that is already this rank's shard (its dataset or sampler says
``rank_sharded = True``, as ``RankMemCachedH5Dataset`` and ``EpochShuffleSampler`` do) is not split
again: its sampler is wrapped in :class:`RankLocalSampler`, a ``DistributedSampler`` that passes
every local index through, so Lightning keeps it too. Training shards shorter than the longest one
(learnt with one small collective when the loader is set) are padded with repeated indices, so that
every rank runs the same number of steps.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from torch.utils.data import (
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

from .dist_env import DistEnv

__all__ = ["RankLocalSampler", "shard_train_loader", "shard_val_loader"]


class RankLocalSampler(DistributedSampler):
    """A rank-local sampler dressed as a ``DistributedSampler``: it yields ``sampler``'s indices
    (cycled up to ``length`` when that is longer) and forwards ``set_epoch``."""

    def __init__(self, sampler: Any, length: int | None = None):
        # DistributedSampler.__init__ needs a dataset and a process group; nothing here splits.
        self.sampler = sampler
        self.num_replicas, self.rank, self.epoch, self.seed = 1, 0, 0, 0
        self.shuffle, self.drop_last = False, False
        self.num_samples = max(len(sampler), length or 0)
        self.total_size = self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if callable(getattr(self.sampler, "set_epoch", None)):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        indices = list(self.sampler)
        if indices and len(indices) < self.num_samples:
            reps = -(-self.num_samples // len(indices))
            indices = (indices * reps)[: self.num_samples]
        return iter(indices)

    def __len__(self) -> int:
        return self.num_samples


def _rank_local(loader: Any) -> bool:
    return isinstance(loader, DataLoader) and (
        getattr(loader.dataset, "rank_sharded", False) is True
        or getattr(loader.sampler, "rank_sharded", False) is True
    )


def _longest_shard(sampler: Any) -> int | None:
    """The longest local sampler of all ranks (one small collective; every rank calls it)."""
    import torch.distributed as tdist

    if not (tdist.is_available() and tdist.is_initialized()):
        return None
    lengths: list[Any] = [None] * tdist.get_world_size()
    tdist.all_gather_object(lengths, len(sampler))
    return max(lengths)


def _keep_rank_local(loader: DataLoader, stage: str) -> DataLoader:
    # Padding only for training: DDP's backward needs equal step counts; validation does not.
    length = _longest_shard(loader.sampler) if stage == "train" else None
    return _rebuild(loader, RankLocalSampler(loader.sampler, length), stage)


def _keep_as_is(loader: Any) -> bool:
    return (
        not isinstance(loader, DataLoader)
        or isinstance(loader.dataset, IterableDataset)
        or isinstance(loader.sampler, DistributedSampler)
    )


def _rebuild(loader: DataLoader, sampler: Any, stage: str) -> DataLoader:
    from lightning.pytorch.trainer.states import RunningStage
    from lightning.pytorch.utilities.data import _update_dataloader

    mode = RunningStage.TRAINING if stage == "train" else RunningStage.VALIDATING
    return _update_dataloader(loader, sampler, mode=mode)


def shard_train_loader(
    loader: Any, dist: DistEnv, seed: int
) -> tuple[Any, DistributedSampler | None]:
    """``loader`` reading this rank's shard of the training data, and the sampler put on it.

    A plain loader gets a ``DistributedSampler`` shuffling only if the loader shuffled (with
    ``seed``, identical on every rank). A loader with its own sampler gets Lightning's
    ``DistributedSamplerWrapper`` around it (shuffled, as Lightning itself would wrap it). The
    second item is that new sampler (whose ``seed`` the caller may set later), or ``None`` when the
    loader was left as it was or reads rank-local data.
    """
    if not dist.distributed or _keep_as_is(loader):
        return loader, None
    if _rank_local(loader):
        return _keep_rank_local(loader, "train"), None
    kwargs: dict[str, Any] = {"num_replicas": dist.world_size, "rank": dist.rank, "seed": seed}
    if isinstance(loader.sampler, (RandomSampler, SequentialSampler)):
        shuffle = isinstance(loader.sampler, RandomSampler)
        sampler: Any = DistributedSampler(loader.dataset, shuffle=shuffle, **kwargs)
    else:
        from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

        sampler = DistributedSamplerWrapper(loader.sampler, shuffle=True, **kwargs)
    return _rebuild(loader, sampler, "train"), sampler


def shard_val_loader(loader: Any, dist: DistEnv) -> Any:
    """``loader`` reading this rank's share of the validation data, no sample repeated."""
    from lightning.pytorch.overrides.distributed import (
        UnrepeatedDistributedSampler,
        UnrepeatedDistributedSamplerWrapper,
    )

    if not dist.distributed or _keep_as_is(loader):
        return loader
    if _rank_local(loader):
        return _keep_rank_local(loader, "val")
    n = len(loader.sampler)
    if n < dist.world_size:
        warnings.warn(
            f"The validation set has {n} samples for {dist.world_size} processes: some ranks "
            "would get none, so samples are repeated to fill them and validation values are "
            "not exact. Use at least as many validation samples as processes.",
            RuntimeWarning,
            stacklevel=3,
        )
        sampler: Sampler[int] = DistributedSampler(
            loader.dataset, num_replicas=dist.world_size, rank=dist.rank, shuffle=False
        )
        return _rebuild(loader, sampler, "val")
    kwargs = {"num_replicas": dist.world_size, "rank": dist.rank, "shuffle": False}
    if isinstance(loader.sampler, (RandomSampler, SequentialSampler)):
        sampler = UnrepeatedDistributedSampler(loader.dataset, **kwargs)
    else:
        sampler = UnrepeatedDistributedSamplerWrapper(loader.sampler, **kwargs)
    return _rebuild(loader, sampler, "val")
