"""``H5LazyDataset``: samples read from an HDF5 file on demand, one file handle per process.

An h5py handle must not cross a ``fork``: a DataLoader worker that used its parent's handle could
read garbage or crash. The dataset therefore opens the file on the first read *in each process*
(it remembers the process id it opened it in) and drops any handle when it is pickled, so it is
safe with ``num_workers > 0``, any start method, and under DDP (each rank opens its own handle).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Subset, get_worker_info

from ._h5 import check_cache_options, get_dataset, open_file

__all__ = ["H5LazyDataset", "h5_worker_init_fn"]


class H5LazyDataset(Dataset):
    """A map-style dataset over ``x_key`` (and ``y_key``) of an HDF5 file, read lazily.

    Args:
        path: the HDF5 file.
        x_key: dataset holding the inputs; the first axis indexes samples.
        y_key: dataset holding the targets (same length), or ``None`` for inputs only.
        x_dtype, y_dtype: NumPy dtypes to cast each sample to (``None``: as stored).
        transform, target_transform: called on each input / target (a NumPy array or scalar).
            Without a transform the value is returned as a ``torch.Tensor``.
        rdcc_nbytes, rdcc_nslots, rdcc_w0: HDF5 chunk-cache size in bytes, hash slots and
            eviction weight, per open handle.
        swmr: open in single-writer/multiple-reader mode (reads while another process appends).

    Items are ``(x, y)`` with a ``y_key``, else ``x``.

    Raises:
        ImportError: h5py is not installed (``pip install nn-handler[h5]``).
        FileNotFoundError: no file at ``path``.
        KeyError: ``x_key``/``y_key`` is not a dataset of the file.
        ValueError: inputs and targets differ in length, or a cache option is out of range.
    """

    def __init__(
        self,
        path: str,
        x_key: str,
        y_key: str | None = None,
        x_dtype: Any = None,
        y_dtype: Any = None,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
        rdcc_nbytes: int = 256 * 1024**2,
        rdcc_nslots: int = 1_000_003,
        rdcc_w0: float = 0.75,
        swmr: bool = True,
    ):
        self._handle: Any = None
        self._pid: int | None = None
        self._open: tuple[Any, Any] = (None, None)
        check_cache_options(rdcc_nbytes, rdcc_nslots, rdcc_w0)
        for name, fn in (("transform", transform), ("target_transform", target_transform)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable or None, got {fn!r}.")
        self.path = os.fspath(path)
        self.x_key, self.y_key = x_key, y_key
        self.x_dtype = None if x_dtype is None else np.dtype(x_dtype)
        self.y_dtype = None if y_dtype is None else np.dtype(y_dtype)
        self.transform, self.target_transform = transform, target_transform
        self._options: dict[str, Any] = {
            "rdcc_nbytes": rdcc_nbytes,
            "rdcc_nslots": rdcc_nslots,
            "rdcc_w0": rdcc_w0,
            "swmr": swmr,
        }
        # Validate the file and keys now, then close: no handle may outlive this call, or a
        # forked worker would inherit it.
        with open_file(self.path, **self._options) as file:
            self._length = len(get_dataset(file, x_key, self.path, "x_key"))
            if y_key is not None:
                n_y = len(get_dataset(file, y_key, self.path, "y_key"))
                if n_y != self._length:
                    raise ValueError(
                        f"{self.path!r}: x_key={x_key!r} has {self._length} samples but "
                        f"y_key={y_key!r} has {n_y}."
                    )

    # ------------------------------------------------------------------ handle
    def _datasets(self) -> tuple[Any, Any]:
        """This process's ``(x, y)`` h5py datasets, opening the file on the first call here."""
        if self._handle is None or self._pid != os.getpid():
            self._handle = open_file(self.path, **self._options)
            self._pid = os.getpid()
            y = self._handle[self.y_key] if self.y_key is not None else None
            self._open = (self._handle[self.x_key], y)
        return self._open

    def _forget_handle(self) -> None:
        """Drop a handle inherited from another process without touching it."""
        if self._pid != os.getpid():
            self._handle, self._pid, self._open = None, None, (None, None)

    def close(self) -> None:
        """Close this process's handle (the next read opens a new one)."""
        if self._handle is not None and self._pid == os.getpid():
            try:
                self._handle.close()
            except Exception:  # noqa: BLE001 - closing at interpreter exit may fail harmlessly
                pass
        self._handle, self._pid, self._open = None, None, (None, None)

    def __del__(self) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"], state["_pid"], state["_open"] = None, None, (None, None)
        return state

    # ------------------------------------------------------------------- items
    def __len__(self) -> int:
        return self._length

    def _index(self, idx: Any) -> int:
        if isinstance(idx, torch.Tensor) and idx.numel() == 1:
            idx = int(idx)
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            raise TypeError(f"H5LazyDataset index must be an int, got {type(idx).__name__}.")
        idx = int(idx)
        if idx < 0:
            idx += self._length
        if not 0 <= idx < self._length:
            raise IndexError(f"index {idx} is out of range for {self._length} samples.")
        return idx

    @staticmethod
    def _value(raw: Any, dtype: Any, fn: Callable[[Any], Any] | None) -> Any:
        value = np.asarray(raw)
        if dtype is not None and value.dtype != dtype:
            value = value.astype(dtype)
        return fn(value) if fn is not None else torch.as_tensor(value)

    def __getitem__(self, idx: Any) -> Any:
        i = self._index(idx)
        xs, ys = self._datasets()
        x = self._value(xs[i], self.x_dtype, self.transform)
        if ys is None:
            return x
        return x, self._value(ys[i], self.y_dtype, self.target_transform)

    def __repr__(self) -> str:
        y = f", y_key={self.y_key!r}" if self.y_key is not None else ""
        return f"H5LazyDataset({self.path!r}, x_key={self.x_key!r}{y}, n={self._length})"


def _h5_datasets(dataset: Any) -> list[H5LazyDataset]:
    """Every ``H5LazyDataset`` inside ``dataset`` (through ``Subset`` and ``ConcatDataset``)."""
    if isinstance(dataset, H5LazyDataset):
        return [dataset]
    if isinstance(dataset, Subset):
        return _h5_datasets(dataset.dataset)
    if isinstance(dataset, ConcatDataset):
        return [d for part in dataset.datasets for d in _h5_datasets(part)]
    return []


def h5_worker_init_fn(_worker_id: int) -> None:
    """``DataLoader(worker_init_fn=...)``: make each worker forget HDF5 handles it inherited.

    The dataset already opens its own handle per process; this guarantees a handle opened in the
    parent before the workers forked is never used (or closed) by a worker.
    """
    info = get_worker_info()
    if info is None:
        return
    for dataset in _h5_datasets(info.dataset):
        dataset._forget_handle()
