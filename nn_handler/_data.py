"""A dataset and the DataLoader keyword arguments it is read with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import DataLoader, Dataset

__all__ = ["DataSlot", "make_slot", "require_batches"]


@dataclass
class DataSlot:
    """What ``set_train_loader``/``set_val_loader`` were given, and the loader built from it."""

    dataset: Any
    loader_kwargs: dict[str, Any] = field(default_factory=dict)
    loader: DataLoader | None = None


def make_slot(dataset: Any, loader_kwargs: dict[str, Any], role: str) -> DataSlot:
    """Build the loader now so bad keyword arguments fail at the call that passed them."""
    if isinstance(dataset, DataLoader):
        if loader_kwargs:
            raise TypeError(
                f"set_{role}_loader got a DataLoader and loader kwargs {sorted(loader_kwargs)}; "
                "pass a Dataset with kwargs, or the DataLoader alone."
            )
        return DataSlot(dataset.dataset, {}, dataset)
    if not isinstance(dataset, Dataset) and not hasattr(dataset, "__getitem__"):
        raise TypeError(
            f"set_{role}_loader expects a torch Dataset (or a DataLoader), got "
            f"{type(dataset).__name__}."
        )
    try:
        loader = DataLoader(dataset, **loader_kwargs)
    except TypeError as err:
        raise TypeError(f"Invalid DataLoader arguments for the {role} loader: {err}") from err
    return DataSlot(dataset, dict(loader_kwargs), loader)


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
