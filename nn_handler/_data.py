"""A dataset, the DataLoader keyword arguments it is read with, and how ranks split it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import DataLoader, Dataset

from .enums import DataLoaderType

__all__ = ["DataSlot", "build_loader", "make_slot", "require_batches"]


@dataclass
class DataSlot:
    """What ``set_train_loader``/``set_val_loader`` were given, and the loader built from it."""

    dataset: Any
    loader_kwargs: dict[str, Any] = field(default_factory=dict)
    loader: DataLoader | None = None
    dataloader_type: DataLoaderType = DataLoaderType.STANDARD


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
            from .dataloaders.rank_cached_h5_dataloader import EpochShuffleSampler

            shuffle = bool(kwargs.pop("shuffle", False))
            kwargs["sampler"] = EpochShuffleSampler(len(dataset), shuffle=shuffle)
        elif not getattr(kwargs["sampler"], "rank_sharded", False):
            raise TypeError(
                "dataloader_type=RANK_CACHED reads each rank's dataset whole, but the sampler "
                f"{type(kwargs['sampler']).__name__} is not marked as sampling a rank-local "
                "dataset; use EpochShuffleSampler (or set rank_sharded = True on your sampler)."
            )
    return DataLoader(dataset, **kwargs)


def make_slot(
    dataset: Any,
    loader_kwargs: dict[str, Any],
    role: str,
    dataloader_type: DataLoaderType | str = DataLoaderType.STANDARD,
) -> DataSlot:
    """Build the loader now so bad keyword arguments fail at the call that passed them."""
    dataloader_type = DataLoaderType.parse(dataloader_type)
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
        return DataSlot(dataset.dataset, {}, dataset)
    if not isinstance(dataset, Dataset) and not hasattr(dataset, "__getitem__"):
        raise TypeError(
            f"set_{role}_loader expects a torch Dataset (or a DataLoader), got "
            f"{type(dataset).__name__}."
        )
    try:
        loader = build_loader(dataset, loader_kwargs, dataloader_type)
    except TypeError as err:
        raise TypeError(f"Invalid DataLoader arguments for the {role} loader: {err}") from err
    return DataSlot(dataset, dict(loader_kwargs), loader, dataloader_type)


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
    dataset = getattr(loader, "dataset", None)
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
