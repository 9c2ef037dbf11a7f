"""Datasets for HDF5 files: lazily read (:mod:`.h5_dataloader`) or cached per rank
(:mod:`.rank_cached_h5_dataloader`). They need h5py: ``pip install nn-handler[h5]``. Also a
reproducible train/validation split of indices (:mod:`.split`).

The public names are imported on first use (PEP 562 module ``__getattr__``), so that importing
one submodule does not run the others.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the submodule defining it (imported on first use, PEP 562)
_EXPORTS: dict[str, str] = {
    "make_train_val_indices": ".split",
    "H5LazyDataset": ".h5_dataloader",
    "h5_worker_init_fn": ".h5_dataloader",
    "RankMemCachedH5Dataset": ".rank_cached_h5_dataloader",
    "EpochShuffleSampler": ".rank_cached_h5_dataloader",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    else:  # a submodule not imported yet (``package.submodule`` after ``import package``)
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
