"""``nn_handler.dataloaders.split``: a reproducible train/validation split of item indices."""

from __future__ import annotations

import os

import numpy as np
import torch.distributed as dist

from .._env.atomic import atomic_write
from ..utils.ddp import _initialized, broadcast_if_ddp

__all__ = ["make_train_val_indices"]


def make_train_val_indices(
    n_items: int,
    val_fraction: float = 0.1,
    seed: int = 1234,
    save_path: str | None = None,
    overwrite: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n_items)`` into sorted training and validation indices.

    The validation set is the first ``round(val_fraction * n_items)`` items of
    ``numpy.random.default_rng(seed).permutation(n_items)``. With ``save_path`` the split is
    kept in that ``.npz`` file (arrays ``train_idx`` and ``val_idx``, written atomically at exactly
    that path) and read back from it by later calls unless ``overwrite``; the file is read
    without pickle. Under DDP rank 0 makes (or reads) the split and every rank gets it.

    Returns:
        ``(train_idx, val_idx)``, two sorted integer arrays.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 0:
        raise ValueError(f"n_items must be a non-negative integer, got {n_items!r}.")
    if not 0.0 <= float(val_fraction) <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction!r}.")
    split = None
    if not _initialized() or dist.get_rank() == 0:
        split = _read(save_path) if save_path and not overwrite else None
        if split is None:
            perm = np.random.default_rng(seed).permutation(int(n_items))
            n_val = int(round(float(val_fraction) * int(n_items)))
            split = (np.sort(perm[n_val:]), np.sort(perm[:n_val]))
            if save_path:
                atomic_write(
                    os.fspath(save_path),
                    lambda f: np.savez_compressed(f, train_idx=split[0], val_idx=split[1]),
                    what="train/validation split",
                )
    return tuple(broadcast_if_ddp(split))


def _read(path: str) -> tuple[np.ndarray, np.ndarray] | None:
    if not os.path.exists(path):
        return None
    with np.load(path, allow_pickle=False) as data:
        return data["train_idx"], data["val_idx"]
