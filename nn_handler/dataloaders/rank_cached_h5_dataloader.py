"""``RankMemCachedH5Dataset``: each rank reads its shard of an HDF5 file into memory, once.

The shards of all ranks are disjoint and together cover the file. Training then reads memory
only: no file handle exists after construction, so DataLoader workers need no special care.
``EpochShuffleSampler`` reshuffles such a rank-local dataset every epoch (``set_epoch``).

Under ``NNHandler`` both are recognised as already sharded (``rank_sharded = True``): the handler
does not split them again between the ranks, and pads the shorter training shards so every rank
runs the same number of steps (DDP needs that).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .._env.dist_env import detect_distributed
from ._h5 import check_cache_options, get_dataset, open_file

__all__ = ["RankMemCachedH5Dataset", "EpochShuffleSampler"]

_MODES = ("contiguous", "interleave")
# numbers.Integral accepts NumPy integers too; int is listed for mypy, which sees no int as one.
_INTEGERS = (int, numbers.Integral)


def _check_split(total: Any, world_size: Any, rank: Any) -> None:
    for name, value, low in (("total", total, 0), ("world_size", world_size, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
    if isinstance(rank, bool) or not isinstance(rank, numbers.Integral):
        raise ValueError(f"rank must be an int, got {rank!r}.")
    if not 0 <= int(rank) < int(world_size):
        raise ValueError(f"rank {rank} is outside [0, {world_size}).")


def _balanced_contiguous_shard(total: int, world_size: int, rank: int) -> tuple[int, int]:
    """``(start, end)`` of rank's contiguous slice; slice lengths differ by at most one."""
    _check_split(total, world_size, rank)
    base, extra = divmod(int(total), int(world_size))
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def _interleaved_indices(total: int, world_size: int, rank: int) -> np.ndarray:
    """Rank's indices ``rank, rank + world_size, rank + 2 * world_size, ...`` below ``total``."""
    _check_split(total, world_size, rank)
    return np.arange(rank, total, world_size, dtype=np.int64)


def _rank_and_world() -> tuple[int, int]:
    """The process group's rank and size, else the launcher's (torchrun/SLURM), else (0, 1).

    Falling back on the launcher's variables lets the dataset be built before the
    ``NNHandler`` that creates the process group.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    env = detect_distributed(None)
    return env.rank, env.world_size


def _read_shard(dataset: Any, mode: str, start: int, end: int, rank: int, world: int) -> Any:
    if mode == "contiguous":
        return dataset[start:end]
    if rank >= len(dataset):
        return np.empty((0, *dataset.shape[1:]), dtype=dataset.dtype)
    return dataset[rank : len(dataset) : world]


def _to_tensor(array: np.ndarray, dtype: Any, argument: str, key: str | None) -> torch.Tensor:
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    if array.dtype.kind not in "biufc":
        raise TypeError(
            f"{key!r} holds {array.dtype} values, which cannot be cached as a tensor; pass "
            f"{argument}=<a numeric NumPy dtype>."
        )
    return torch.from_numpy(np.ascontiguousarray(array))


class RankMemCachedH5Dataset(Dataset):
    """This rank's shard of ``x_key`` (and ``y_key``) of an HDF5 file, held in memory.

    Args:
        path: the HDF5 file.
        x_key, y_key: datasets of inputs and targets (``y_key=None``: inputs only).
        mode: ``"contiguous"`` (one slice per rank, lengths differ by at most one; fastest to
            read) or ``"interleave"`` (rank ``r`` gets samples ``r, r + W, r + 2W, ...``; keeps
            class proportions of sorted files).
        dtype_x, dtype_y: NumPy dtypes the cache is stored in (``None``: as in the file).
        transform, target_transform: called on each cached input / target tensor.
        pin_host_memory: pin the cache for fast copies to the GPU (ignored without CUDA).
        share_memory: put the cache in shared memory (workers then share it, not copy it).
        rdcc_nbytes, rdcc_nslots, rdcc_w0, swmr: HDF5 options for the one read.
        log_fn: receives one line saying what this rank cached.

    The rank and world size come from the process group when one exists, else from the
    launcher's variables (torchrun or SLURM), else the process is alone and caches everything.

    Attributes:
        indices: the file rows this rank holds, in order (``numpy`` int64 array).
        total: number of samples in the file.
        max_shard_len: the longest shard of any rank.

    Raises:
        ImportError: h5py is not installed (``pip install nn-handler[h5]``).
        FileNotFoundError: no file at ``path``.
        KeyError: ``x_key``/``y_key`` is not a dataset of the file.
        ValueError: unknown ``mode``; inputs and targets differ in length.
    """

    #: Read by NNHandler: this dataset is already one rank's shard.
    rank_sharded = True

    def __init__(
        self,
        path: str,
        x_key: str,
        y_key: str | None = None,
        *,
        mode: str = "contiguous",
        dtype_x: Any = np.float32,
        dtype_y: Any = None,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
        pin_host_memory: bool = True,
        share_memory: bool = False,
        rdcc_nbytes: int = 256 * 1024**2,
        rdcc_nslots: int = 1_000_003,
        rdcc_w0: float = 0.75,
        swmr: bool = True,
        log_fn: Callable[[str], None] | None = print,
    ):
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}.")
        check_cache_options(rdcc_nbytes, rdcc_nslots, rdcc_w0)
        for name, fn in (("transform", transform), ("target_transform", target_transform)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable or None, got {fn!r}.")
        self.path = os.fspath(path)
        self.x_key, self.y_key, self.mode = x_key, y_key, mode
        self.transform, self.target_transform = transform, target_transform
        self.rank, self.world_size = _rank_and_world()
        options: dict[str, Any] = {
            "rdcc_nbytes": rdcc_nbytes,
            "rdcc_nslots": rdcc_nslots,
            "rdcc_w0": rdcc_w0,
        }
        with open_file(self.path, swmr=swmr, **options) as file:
            xs = get_dataset(file, x_key, self.path, "x_key")
            ys = get_dataset(file, y_key, self.path, "y_key") if y_key is not None else None
            self.total = len(xs)
            if ys is not None and len(ys) != self.total:
                raise ValueError(
                    f"{self.path!r}: x_key={x_key!r} has {self.total} samples but "
                    f"y_key={y_key!r} has {len(ys)}."
                )
            start, end = _balanced_contiguous_shard(self.total, self.world_size, self.rank)
            if mode == "contiguous":
                self.indices = np.arange(start, end, dtype=np.int64)
            else:
                self.indices = _interleaved_indices(self.total, self.world_size, self.rank)
            shard = (mode, start, end, self.rank, self.world_size)
            x = _to_tensor(_read_shard(xs, *shard), dtype_x, "dtype_x", x_key)
            y = (
                None
                if ys is None
                else _to_tensor(_read_shard(ys, *shard), dtype_y, "dtype_y", y_key)
            )
        self.max_shard_len = math.ceil(self.total / self.world_size)
        self._x, self._y = self._place(x, pin_host_memory, share_memory), None
        if y is not None:
            self._y = self._place(y, pin_host_memory, share_memory)
        if log_fn is not None:
            nbytes = sum(t.numel() * t.element_size() for t in (self._x, self._y) if t is not None)
            log_fn(
                f"[rank {self.rank}/{self.world_size}] cached {len(self.indices)} of {self.total} "
                f"samples ({mode}) from {self.path!r}: {nbytes / 2**20:.1f} MiB"
            )

    @staticmethod
    def _place(tensor: torch.Tensor, pin: bool, share: bool) -> torch.Tensor:
        if pin and torch.cuda.is_available():
            tensor = tensor.pin_memory()
        if share:
            tensor.share_memory_()
        return tensor

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, idx: int) -> Any:
        x = self._x[idx]
        if self.transform is not None:
            x = self.transform(x)
        if self._y is None:
            return x
        y = self._y[idx]
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y

    def __repr__(self) -> str:
        return (
            f"RankMemCachedH5Dataset({self.path!r}, x_key={self.x_key!r}, mode={self.mode!r}, "
            f"rank {self.rank}/{self.world_size}, {len(self)} of {self.total} samples)"
        )


class EpochShuffleSampler(Sampler[int]):
    """Indices ``0..data_len-1`` of a rank-local dataset, in a new order every epoch.

    The order is a function of ``seed + epoch`` only, so a run is reproducible; call
    :meth:`set_epoch` before each epoch (``NNHandler.train`` and Lightning do it for you).

    Args:
        data_len: the length of this rank's dataset.
        seed: base seed of the permutation.
        shuffle: ``False`` yields ``0..data_len-1`` in order.
    """

    #: Read by NNHandler: the dataset this samples is already one rank's shard.
    rank_sharded = True

    def __init__(self, data_len: int, seed: int = 0, shuffle: bool = True):
        if isinstance(data_len, bool) or not isinstance(data_len, _INTEGERS) or data_len < 0:
            raise ValueError(f"data_len must be an int >= 0, got {data_len!r}.")
        if isinstance(seed, bool) or not isinstance(seed, _INTEGERS):
            raise ValueError(f"seed must be an int, got {seed!r}.")
        self.data_len, self.seed, self.shuffle = int(data_len), int(seed), bool(shuffle)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of ``epoch`` for the next iteration."""
        if isinstance(epoch, bool) or not isinstance(epoch, _INTEGERS) or epoch < 0:
            raise ValueError(f"epoch must be an int >= 0, got {epoch!r}.")
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.data_len))
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.data_len, generator=generator).tolist())

    def __len__(self) -> int:
        return self.data_len
