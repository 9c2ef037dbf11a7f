"""The dataset of the CLI example: Gaussian blobs, one per class, generated from a seed.

Every ``__init__`` argument is plain data stored as an attribute of the same name, so the CLI can
build the dataset from YAML and ``NNHandler.export_config`` can write it back.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

__all__ = ["GaussianBlobs"]


class GaussianBlobs(Dataset):
    """``n_samples`` points in ``n_features`` dimensions around ``n_classes`` random centres.

    ``split="train"`` and ``split="val"`` draw different points around the same centres. The
    data come from a private generator seeded with ``seed``: building the dataset never touches
    the global random state (which seeds the model's initial weights).
    """

    def __init__(
        self,
        n_samples: int = 256,
        n_features: int = 8,
        n_classes: int = 3,
        spread: float = 1.0,
        seed: int = 0,
        split: str = "train",
    ):
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}.")
        self.n_samples, self.n_features, self.n_classes = n_samples, n_features, n_classes
        self.spread, self.seed, self.split = spread, seed, split
        centres = torch.randn(n_classes, n_features, generator=torch.Generator().manual_seed(seed))
        g = torch.Generator().manual_seed(seed + (1 if split == "train" else 2))
        self.targets = torch.randint(0, n_classes, (n_samples,), generator=g)
        noise = spread * torch.randn(n_samples, n_features, generator=g)
        self.inputs = 2.0 * centres[self.targets] + noise

    def __len__(self) -> int:
        return self.n_samples

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.targets[index]
