"""Datasets for HDF5 files: lazily read (:mod:`.h5_dataloader`) or cached per rank
(:mod:`.rank_cached_h5_dataloader`). They need h5py: ``pip install nn-handler[h5]``."""

from .h5_dataloader import H5LazyDataset, h5_worker_init_fn
from .rank_cached_h5_dataloader import EpochShuffleSampler, RankMemCachedH5Dataset

__all__ = ["H5LazyDataset", "h5_worker_init_fn", "RankMemCachedH5Dataset", "EpochShuffleSampler"]
