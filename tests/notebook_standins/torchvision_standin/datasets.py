"""``MNIST`` with the real dataset's shapes: uint8 images (N, 28, 28), int64 labels (N,)."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

TRAIN_SIZE, TEST_SIZE = 256, 64


@functools.cache
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)  # (1797, 1, 8, 8)
    images = F.interpolate(images, size=(20, 20), mode="bilinear", align_corners=False)
    images = F.pad(images, (4, 4, 4, 4))  # centred in 28 x 28, as MNIST's digits are
    peak = images.amax(dim=(1, 2, 3), keepdim=True)
    images = (images.clamp_min(0) / peak * 255).round().to(torch.uint8).squeeze(1)
    return images, torch.tensor(digits.target, dtype=torch.int64)


class MNIST(torch.utils.data.Dataset):
    """``MNIST(root, train=True, transform=None, target_transform=None, download=False)``:
    ``TRAIN_SIZE`` (train) or ``TEST_SIZE`` images; nothing is read or written under ``root``."""

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        images, labels = _digits()
        part = slice(0, TRAIN_SIZE) if train else slice(TRAIN_SIZE, TRAIN_SIZE + TEST_SIZE)
        self.root, self.train = root, train
        self.data, self.targets = images[part].clone(), labels[part].clone()
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        image, target = self.data[index], int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target
