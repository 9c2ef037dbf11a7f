"""``make_grid`` (images tiled in rows, as an RGB tensor) and a ``save_image`` that says it is
not provided."""

from __future__ import annotations

import math

import torch


def make_grid(tensor, nrow=8, padding=2, normalize=False, value_range=None, scale_each=False,
              pad_value=0.0):  # fmt: skip
    """Tile ``(B, C, H, W)`` images ``nrow`` per row with ``padding`` pixels between them."""
    images = tensor.detach().to(torch.float32).cpu().clone()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if normalize:
        low, high = value_range if value_range is not None else (images.min(), images.max())
        images = images.clamp(low, high).sub(low).div(max(float(high - low), 1e-5))
    batch, channels, height, width = images.shape
    cols = min(nrow, batch)
    rows = math.ceil(batch / cols)
    grid = torch.full(
        (channels, rows * (height + padding) + padding, cols * (width + padding) + padding),
        float(pad_value),
    )
    for k in range(batch):
        top = (k // cols) * (height + padding) + padding
        left = (k % cols) * (width + padding) + padding
        grid[:, top : top + height, left : left + width] = images[k]
    return grid


def save_image(*args, **kwargs):
    raise NotImplementedError("save_image is not part of the notebooks' torchvision stand-in")
