"""h5py access shared by the HDF5 datasets: the optional import, opening a file, finding a key."""

from __future__ import annotations

import numbers
import os
from typing import Any

__all__ = ["require_h5py", "open_file", "get_dataset", "check_cache_options"]

_INSTALL_HINT = "pip install nn-handler[h5]"


def require_h5py() -> Any:
    """The ``h5py`` module, or an ``ImportError`` that says how to install it."""
    try:
        import h5py
    except ImportError as err:
        raise ImportError(
            f"The HDF5 datasets need h5py, which is not installed: {_INSTALL_HINT} "
            "(or pip install h5py)."
        ) from err
    return h5py


def check_cache_options(rdcc_nbytes: Any, rdcc_nslots: Any, rdcc_w0: Any) -> None:
    """Reject chunk-cache settings HDF5 would misread or report obscurely."""
    for name, value, low in (("rdcc_nbytes", rdcc_nbytes, 0), ("rdcc_nslots", rdcc_nslots, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
    if (
        isinstance(rdcc_w0, bool)
        or not isinstance(rdcc_w0, numbers.Real)
        or not 0 <= float(rdcc_w0) <= 1
    ):
        raise ValueError(f"rdcc_w0 must be a number in [0, 1], got {rdcc_w0!r}.")


def open_file(
    path: str | os.PathLike,
    *,
    rdcc_nbytes: int,
    rdcc_nslots: int,
    rdcc_w0: float,
    swmr: bool,
) -> Any:
    """Open ``path`` read-only with the given chunk cache.

    Raises:
        ImportError: h5py is not installed.
        FileNotFoundError: no file at ``path``.
        OSError: the file is not an HDF5 file HDF5 can open.
    """
    h5py = require_h5py()
    path = os.fspath(path)
    if not os.path.isfile(path):
        what = "a directory" if os.path.isdir(path) else "not found"
        raise FileNotFoundError(f"HDF5 file {path!r}: {what}.")
    try:
        return h5py.File(
            path,
            "r",
            swmr=bool(swmr),
            rdcc_nbytes=int(rdcc_nbytes),
            rdcc_nslots=int(rdcc_nslots),
            rdcc_w0=float(rdcc_w0),
        )
    except OSError as err:
        raise OSError(f"Could not open {path!r} as an HDF5 file: {err}") from err


def _dataset_names(file: Any, limit: int = 20) -> list[str]:
    h5py = require_h5py()
    names: list[str] = []

    def visit(name: str, obj: Any) -> Any:
        if isinstance(obj, h5py.Dataset):
            names.append(name)
        return True if len(names) >= limit else None  # a true value stops the walk

    file.visititems(visit)
    return names


def get_dataset(file: Any, key: Any, path: str, argument: str) -> Any:
    """The HDF5 dataset ``file[key]``.

    Raises:
        TypeError: ``key`` is not a string.
        KeyError: no dataset under ``key``; the message lists the file's datasets.
    """
    h5py = require_h5py()
    if not isinstance(key, str) or not key:
        raise TypeError(f"{argument} must be the name of a dataset in the file, got {key!r}.")
    obj = file.get(key)
    if not isinstance(obj, h5py.Dataset):
        found = "a group" if obj is not None else "missing"
        raise KeyError(
            f"{argument}={key!r} is {found} in {path!r}; datasets in the file: "
            f"{_dataset_names(file) or 'none'}."
        )
    if obj.shape == ():
        raise ValueError(f"{argument}={key!r} in {path!r} is a scalar, not a list of samples.")
    return obj
