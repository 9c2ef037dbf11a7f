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
"""

from __future__ import annotations

import warnings
from typing import Any

from torch.utils.data import (
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
)

from nn_handler._dist_env import DistEnv

__all__ = ["shard_train_loader", "shard_val_loader"]


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


def shard_train_loader(loader: Any, dist: DistEnv, seed: int) -> Any:
    """``loader`` reading this rank's shard of the training data.

    A plain loader gets a ``DistributedSampler`` shuffling only if the loader shuffled (with
    ``seed``, identical on every rank). A loader with its own sampler gets Lightning's
    ``DistributedSamplerWrapper`` around it (shuffled, as Lightning itself would wrap it).
    """
    if not dist.distributed or _keep_as_is(loader):
        return loader
    kwargs = {"num_replicas": dist.world_size, "rank": dist.rank, "seed": seed}
    if isinstance(loader.sampler, (RandomSampler, SequentialSampler)):
        shuffle = isinstance(loader.sampler, RandomSampler)
        sampler = DistributedSampler(loader.dataset, shuffle=shuffle, **kwargs)
    else:
        from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

        sampler = DistributedSamplerWrapper(loader.sampler, shuffle=True, **kwargs)
    sampler._nn_handler_shard = True  # its seed follows the handler's seed at train()
    return _rebuild(loader, sampler, "train")


def shard_val_loader(loader: Any, dist: DistEnv) -> Any:
    """``loader`` reading this rank's share of the validation data, no sample repeated."""
    from lightning.pytorch.overrides.distributed import (
        UnrepeatedDistributedSampler,
        UnrepeatedDistributedSamplerWrapper,
    )

    if not dist.distributed or _keep_as_is(loader):
        return loader
    n = len(loader.sampler)
    if n < dist.world_size:
        warnings.warn(
            f"The validation set has {n} samples for {dist.world_size} processes: some ranks "
            "would get none, so samples are repeated to fill them and validation values are "
            "not exact. Use at least as many validation samples as processes.",
            RuntimeWarning,
            stacklevel=3,
        )
        sampler = DistributedSampler(
            loader.dataset, num_replicas=dist.world_size, rank=dist.rank, shuffle=False
        )
        return _rebuild(loader, sampler, "val")
    kwargs = {"num_replicas": dist.world_size, "rank": dist.rank, "shuffle": False}
    if isinstance(loader.sampler, (RandomSampler, SequentialSampler)):
        sampler = UnrepeatedDistributedSampler(loader.dataset, **kwargs)
    else:
        sampler = UnrepeatedDistributedSamplerWrapper(loader.sampler, **kwargs)
    return _rebuild(loader, sampler, "val")
