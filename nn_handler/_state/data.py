"""A dataset, the DataLoader keyword arguments it is read with, and the loader built from them.

Under DDP the loader is this rank's shard from the start (a ``DistributedSampler``, or the
dataset itself when it already is the rank's shard: ``DataLoaderType.RANK_CACHED``), so what
``handler.train_loader`` shows is what training reads; Lightning keeps such loaders as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .._env.dist_env import DistEnv, detect_distributed
from .._env.dist_loaders import shard_train_loader, shard_val_loader
from ..dataloaders.rank_cached_h5_dataloader import EpochShuffleSampler
from ..enums import DataLoaderType

__all__ = [
    "DataSlot",
    "build_loader",
    "make_slot",
    "require_batches",
    "shuffle_seed",
    "stateful_loader",
    "use_shuffle_seed",
]


@dataclass
class DataSlot:
    """What ``set_train_loader``/``set_val_loader`` were given, and the loader built from it."""

    dataset: Any
    loader_kwargs: dict[str, Any] = field(default_factory=dict)
    loader: DataLoader | None = None
    dataloader_type: DataLoaderType = DataLoaderType.STANDARD
    #: The same data through torchdata's ``StatefulDataLoader`` (built on first use).
    stateful: Any = None
    #: ``loader`` is the user's own object (not built from ``dataset`` and ``loader_kwargs``).
    given_loader: bool = False
    #: The ``DistributedSampler`` put on ``loader`` when it was sharded for DDP training: its
    #: seed follows the handler's seed at ``train()`` (see :func:`use_shuffle_seed`).
    shard_sampler: DistributedSampler | None = None


def _is_stateful(loader: Any) -> bool:
    from lightning.pytorch.utilities.combined_loader import _Stateful

    return isinstance(loader, _Stateful)


def stateful_loader(slot: DataSlot, distributed: bool) -> Any:
    """The slot's loader as one whose position Lightning saves in checkpoints and restores.

    A loader that has ``state_dict``/``load_state_dict`` already (a ``StatefulDataLoader`` given
    to ``set_train_loader``) is used as it is. A loader built from a dataset and keyword
    arguments is rebuilt once as torchdata's ``StatefulDataLoader`` with the same arguments (its
    shuffle sampler saves its generator and position). Otherwise (torchdata not installed, a
    ``DataLoader`` object given, DDP shards, ``RANK_CACHED``) the slot's own loader: a resume
    inside an epoch then starts the epoch's data again, and Lightning warns.
    """
    loader = slot.loader
    if _is_stateful(loader):
        return loader
    if slot.stateful is not None:
        return slot.stateful
    if distributed or slot.dataloader_type is not DataLoaderType.STANDARD:
        return loader
    if slot.given_loader or type(loader) is not DataLoader:
        return loader
    try:
        from torchdata.stateful_dataloader import StatefulDataLoader
    except ImportError:
        return loader
    slot.stateful = StatefulDataLoader(slot.dataset, **slot.loader_kwargs)
    return slot.stateful


def build_loader(
    dataset: Any, loader_kwargs: dict[str, Any], dataloader_type: DataLoaderType
) -> DataLoader:
    """``DataLoader(dataset, **loader_kwargs)`` for the given :class:`DataLoaderType`.

    ``RANK_CACHED``: ``dataset`` is this rank's own shard. Unless a ``sampler`` is given, it is
    read through an ``EpochShuffleSampler`` (shuffled when ``shuffle=True``, a new order each
    epoch), which tells the handler not to split it between the ranks again.
    """
    kwargs = dict(loader_kwargs)
    if dataloader_type is DataLoaderType.RANK_CACHED and kwargs.get("batch_sampler") is None:
        if kwargs.get("sampler") is None:
            shuffle = bool(kwargs.pop("shuffle", False))
            kwargs["sampler"] = EpochShuffleSampler(len(dataset), shuffle=shuffle)
        elif not getattr(kwargs["sampler"], "rank_sharded", False):
            raise TypeError(
                "dataloader_type=RANK_CACHED reads each rank's dataset whole, but the sampler "
                f"{type(kwargs['sampler']).__name__} is not marked as sampling a rank-local "
                "dataset; use EpochShuffleSampler (or set rank_sharded = True on your sampler)."
            )
    return DataLoader(dataset, **kwargs)


def shuffle_seed(seed: int | None) -> int:
    """The seed of the training shuffle under DDP: ``seed``, else Lightning's global seed, else 0.

    It must be the same on every rank, or the shards would overlap.
    """
    return int(seed) if seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))


def use_shuffle_seed(slot: DataSlot, seed: int | None) -> None:
    """Give the sampler that sharded ``slot``'s training loader the seed known at ``train()``."""
    if slot.shard_sampler is not None:
        slot.shard_sampler.seed = shuffle_seed(seed)


def _shard(
    loader: DataLoader, role: str, dist: DistEnv, seed: int | None
) -> tuple[DataLoader, DistributedSampler | None]:
    if role == "train":
        return shard_train_loader(loader, dist, shuffle_seed(seed))
    return shard_val_loader(loader, dist), None


def make_slot(
    dataset: Any,
    loader_kwargs: dict[str, Any],
    role: str,
    dataloader_type: DataLoaderType | str = DataLoaderType.STANDARD,
    dist: DistEnv | None = None,
    seed: int | None = None,
) -> DataSlot:
    """Build the loader now so bad keyword arguments fail at the call that passed them.

    With a distributed ``dist`` the loader reads this rank's shard (``seed``: the training
    shuffle's seed, see :func:`shuffle_seed`).
    """
    dataloader_type = DataLoaderType.parse(dataloader_type)
    shard_env = dist if dist is not None and dist.distributed else None
    if isinstance(dataset, DataLoader):
        if loader_kwargs:
            raise TypeError(
                f"set_{role}_loader got a DataLoader and loader kwargs {sorted(loader_kwargs)}; "
                "pass a Dataset with kwargs, or the DataLoader alone."
            )
        if dataloader_type is not DataLoaderType.STANDARD:
            raise TypeError(
                f"set_{role}_loader(dataloader_type={dataloader_type.name}) builds its own "
                "DataLoader: pass the Dataset and the loader kwargs, not a DataLoader."
            )
        loader, sampler = dataset, None
        if shard_env is not None:
            loader, sampler = _shard(dataset, role, shard_env, seed)
        return DataSlot(dataset.dataset, {}, loader, given_loader=True, shard_sampler=sampler)
    if not isinstance(dataset, Dataset) and not hasattr(dataset, "__getitem__"):
        raise TypeError(
            f"set_{role}_loader expects a torch Dataset (or a DataLoader), got "
            f"{type(dataset).__name__}."
        )
    try:
        loader = build_loader(dataset, loader_kwargs, dataloader_type)
    except TypeError as err:
        raise TypeError(f"Invalid DataLoader arguments for the {role} loader: {err}") from err
    sampler = None
    if shard_env is not None:
        loader, sampler = _shard(loader, role, shard_env, seed)
    return DataSlot(dataset, dict(loader_kwargs), loader, dataloader_type, shard_sampler=sampler)


def require_batches(loader: Any, role: str) -> None:
    """Refuse a ``role`` (``"train"``/``"val"``) loader that yields no batch: Lightning would skip
    the stage with only a warning.

    Loaders without a length (iterable datasets) are not checked.

    Raises:
        ValueError: the loader has 0 batches (an empty dataset, or ``drop_last=True`` with fewer
            samples than ``batch_size``).
    """
    try:
        batches = len(loader)
    except TypeError:
        return
    if batches:
        return
    dataset: Any = getattr(loader, "dataset", None)
    try:
        samples = f"{len(dataset)} samples"
    except TypeError:
        samples = "an unsized dataset"
    sampler = getattr(loader, "sampler", None)
    if sampler is not None and hasattr(sampler, "num_replicas"):
        samples += f" split over {sampler.num_replicas} processes"
    batch_size = getattr(loader, "batch_size", None)
    if getattr(loader, "drop_last", False) and batch_size:
        why = f" and drop_last=True drops every incomplete batch of {batch_size}"
        fix = "use drop_last=False or a batch_size no larger than the data"
    else:
        why, fix = "", f"give set_{role}_loader a non-empty dataset"
    raise ValueError(f"The {role} loader yields no batch: {samples}{why}; {fix}.")


def _create_distributed_loader(
    dataset: Any,
    loader_kwargs: dict[str, Any],
    device: Any = None,
    log_fn: Any = None,
    is_eval: bool = False,
) -> tuple[DataLoader, Any]:
    """``(loader, sampler)`` for this rank, as ``set_train_loader`` (``is_eval``:
    ``set_val_loader``) builds it; the original's name. ``device`` and ``log_fn`` are unused."""
    role = "val" if is_eval else "train"
    slot = make_slot(dataset, dict(loader_kwargs), role, dist=detect_distributed(None))
    assert slot.loader is not None  # make_slot always builds one
    return slot.loader, slot.loader.sampler
