"""A dataset and the DataLoader keyword arguments it is read with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import DataLoader, Dataset

__all__ = ["DataSlot", "make_slot"]


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
