"""Small HDF5 files for the dataset tests, and the models the original's examples call YourModel.

Every sample identifies itself: all values of ``images[i]`` equal ``i``, ``labels[i] = i % 3``
and ``embeddings[i] = [i, 2i]``, so a test can tell exactly which rows a loader produced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

IMAGE_SHAPE = (3, 4, 4)


def write_images(path: str | Path, n: int = 40, label_dtype: Any = np.int32) -> Path:
    """``images`` (n, 3, 4, 4) float64 and ``labels`` (n,) of ``label_dtype``."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = np.broadcast_to(np.arange(n, dtype=np.float64)[:, None, None, None], (n, *IMAGE_SHAPE))
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.ascontiguousarray(images), chunks=(4, *IMAGE_SHAPE))
        f.create_dataset("labels", data=(np.arange(n) % 3).astype(label_dtype))
    return path


def write_embeddings(path: str | Path, n: int = 30) -> Path:
    """``embeddings`` (n, 2) float64: row i is [i, 2i]."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = np.stack([np.arange(n), 2 * np.arange(n)], axis=1).astype(np.float64)
    with h5py.File(path, "w") as f:
        f.create_dataset("embeddings", data=rows)
    return path


def ids(batch: torch.Tensor) -> list[int]:
    """The row numbers of a batch of ``images`` or ``embeddings``."""
    return [int(v) for v in batch.reshape(len(batch), -1)[:, 0].tolist()]


class ImageNet(nn.Module):
    """Stands in for the docs' ``YourModel`` on the image files."""

    def __init__(self, classes: int = 3):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(IMAGE_SHAPE)), classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.float())
