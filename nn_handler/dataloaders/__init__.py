"""Datasets for HDF5 files: lazily read (:mod:`.h5_dataloader`) or cached per rank
(:mod:`.rank_cached_h5_dataloader`). They need h5py: ``pip install nn-handler[h5]``. Also a
reproducible train/validation split of indices (:mod:`.split`)."""

from .h5_dataloader import H5LazyDataset, h5_worker_init_fn
from .rank_cached_h5_dataloader import EpochShuffleSampler, RankMemCachedH5Dataset
from .split import make_train_val_indices

__all__ = [
    "make_train_val_indices",
    "H5LazyDataset",
    "h5_worker_init_fn",
    "RankMemCachedH5Dataset",
    "EpochShuffleSampler",
]
