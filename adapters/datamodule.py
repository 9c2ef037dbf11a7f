"""``HandlerDataModule``: datasets plus DataLoader keyword arguments, as a LightningDataModule."""

from __future__ import annotations

import inspect
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from .._ops.suggest import did_you_mean
from .._state.data import build_loader
from ..enums import DataLoaderType

__all__ = ["DATALOADER_ARGUMENTS", "HandlerDataModule"]

_STANDARD = DataLoaderType.STANDARD

# What ``train_loader``/``val_loader`` may hold: DataLoader's keyword arguments.
DATALOADER_ARGUMENTS = frozenset(inspect.signature(DataLoader.__init__).parameters) - {
    "self",
    "dataset",
}


def _check_loader_kwargs(kwargs: dict[str, Any] | None, key: str) -> dict[str, Any]:
    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict):
        raise TypeError(
            f"{key} must be a dict of DataLoader arguments, got {type(kwargs).__name__}."
        )
    unknown = sorted(set(kwargs) - DATALOADER_ARGUMENTS)
    if unknown:
        hint = did_you_mean(unknown[0], DATALOADER_ARGUMENTS)
        raise TypeError(
            f"{key} has {unknown}, which torch.utils.data.DataLoader does not take.{hint} "
            f"Valid keys: {sorted(DATALOADER_ARGUMENTS)}."
        )
    return dict(kwargs)


class HandlerDataModule(L.LightningDataModule):
    """Datasets and the DataLoader arguments they are read with, as NNHandler's loaders read them.

    ``test`` reads ``test_dataset`` (else the validation set); ``predict`` reads
    ``predict_dataset`` (else the test set, else the validation set).

    Args:
        train_dataset: the training set (``set_train_loader``'s dataset).
        val_dataset: the validation set, or ``None`` for no validation.
        train_loader: DataLoader keyword arguments for training (``batch_size``, ``shuffle``, ...).
        val_loader: DataLoader keyword arguments for validation, testing and prediction.
        test_dataset: the set read by ``Trainer.test``.
        predict_dataset: the set read by ``Trainer.predict``.
        train_dataloader_type, val_dataloader_type: ``"standard"`` or ``"rank_cached"``
            (the dataset is already this rank's shard), as ``set_train_loader`` takes them.
    """

    def __init__(
        self,
        train_dataset: Dataset | None = None,
        val_dataset: Dataset | None = None,
        train_loader: dict[str, Any] | None = None,
        val_loader: dict[str, Any] | None = None,
        test_dataset: Dataset | None = None,
        predict_dataset: Dataset | None = None,
        train_dataloader_type: str = "standard",
        val_dataloader_type: str = "standard",
    ):
        super().__init__()
        self.dataloader_types = {
            "train": DataLoaderType.parse(train_dataloader_type),
            "val": DataLoaderType.parse(val_dataloader_type),
        }
        self.train_dataset = train_dataset
        self.val_dataset = val_dataset
        self.test_dataset = test_dataset
        self.predict_dataset = predict_dataset
        self.train_loader_kwargs = _check_loader_kwargs(train_loader, "train_loader")
        self.val_loader_kwargs = _check_loader_kwargs(val_loader, "val_loader")
        # Loaders handed over as objects (NNHandler.to_datamodule), used as they are.
        self._given: dict[str, DataLoader] = {}

    @classmethod
    def from_loaders(
        cls, train: DataLoader | None, val: DataLoader | None = None
    ) -> HandlerDataModule:
        """A datamodule serving these very DataLoader objects."""
        module = cls(
            train.dataset if train is not None else None, val.dataset if val is not None else None
        )
        module._given = {k: v for k, v in (("train", train), ("val", val)) if v is not None}
        return module

    def _loader(self, role: str, dataset: Any, kwargs: dict[str, Any]) -> DataLoader | list:
        if role in self._given:
            return self._given[role]
        if dataset is None:
            return []
        return build_loader(dataset, kwargs, self.dataloader_types.get(role, _STANDARD))

    def train_dataloader(self) -> DataLoader | list:
        if self.train_dataset is None and "train" not in self._given:
            raise RuntimeError(
                "HandlerDataModule has no train_dataset: set data.init_args.train_dataset in the "
                "config (or pass train_dataset=...) to fit."
            )
        return self._loader("train", self.train_dataset, self.train_loader_kwargs)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val", self.val_dataset, self.val_loader_kwargs)

    def test_dataloader(self) -> DataLoader | list:
        if self.test_dataset is not None:
            return self._loader("test", self.test_dataset, self.val_loader_kwargs)
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader | list:
        if self.predict_dataset is not None:
            return self._loader("predict", self.predict_dataset, self.val_loader_kwargs)
        return self.test_dataloader()
