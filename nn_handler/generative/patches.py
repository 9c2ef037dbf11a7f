"""Patch-based score models: random patches with positional channels, and the full-image score.

A patch model is trained on ``patch_size``-square crops of the images; two extra inputs, the
crop's pixel coordinates scaled to ``[-1, 1]``, tell it where the crop lies. At sampling time
the full image's score is assembled from overlapping patches: every sliding-window position is
scored with its coordinate grid and the overlaps are averaged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "make_pos_grid",
    "patchify",
    "patch_score",
    "patch_score_vectorized",
    "check_patch_geometry",
]

#: ``score_fn(t, x_patches, pos_grids, *conditions) -> score`` over a batch of patches.
PatchScoreFn = Callable[..., torch.Tensor]


def _as_int(name: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an integer, got {value!r}.") from err
    if number != value or number < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    return number


def _scaled(coords: torch.Tensor, size: int) -> torch.Tensor:
    """Pixel indices ``0 .. size - 1`` mapped to ``[-1, 1]`` as ``(i / (size - 1) - 0.5) * 2``."""
    return (coords / (size - 1) - 0.5) * 2


def make_pos_grid(
    x0: int, y0: int, p: int, H: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """The ``(1, 2, p, p)`` coordinate grid of the ``p``-square patch whose top-left pixel is
    column ``x0``, row ``y0`` of an image of side ``H``: channel 0 the column, channel 1 the row,
    each scaled from ``0 .. H - 1`` to ``[-1, 1]``."""
    xs = _scaled(torch.arange(x0, x0 + p, device=device), H)
    ys = _scaled(torch.arange(y0, y0 + p, device=device), H)
    return torch.stack([xs.expand(p, p), ys[:, None].expand(p, p)]).unsqueeze(0)


def patchify(
    images: torch.Tensor,
    patch_size: int,
    return_pos: bool = True,
    image_res: tuple[int, int] | None = None,
) -> Any:  # a tensor, or (tensor, tensor) with return_pos
    """One random ``patch_size``-square crop of each image, and its coordinate grid.

    Args:
        images: ``(B, C, H, W)``.
        patch_size: the crop's side.
        return_pos: also return the crops' coordinate grids.
        image_res: ``(h, w)`` of the real image when ``images`` are padded around it (centred);
            crops are then taken inside it. Default: the whole ``H x W``.

    Returns:
        ``patches`` ``(B, C, p, p)``, and with ``return_pos`` also ``pos_grids``
        ``(B, 2, p, p)``: the crop's column (channel 0) and row (channel 1) in the padded image,
        scaled from ``0 .. W - 1`` (``H - 1``) to ``[-1, 1]``. The top-left corners are drawn
        with ``torch.randint`` (rows, then columns), except when the crop is the whole image.
    """
    p = _as_int("patch_size", patch_size)
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}.")
    device = images.device
    batch, _, res_h, res_w = images.shape
    h, w = (res_h, res_w) if image_res is None else image_res
    if p > h or p > w:
        raise ValueError(f"patch_size {p} is larger than the image ({h} x {w}).")
    top, left = max(0, (res_h - h) // 2), max(0, (res_w - w) // 2)
    if (h, w) == (p, p):
        i = torch.full((batch,), top, device=device, dtype=torch.long)
        j = torch.full((batch,), left, device=device, dtype=torch.long)
    else:
        i = torch.randint(0, h - p + 1, (batch,), device=device) + top
        j = torch.randint(0, w - p + 1, (batch,), device=device) + left
    offsets = torch.arange(p, device=device)
    rows = i[:, None] + offsets  # (B, p)
    cols = j[:, None] + offsets
    patches = images[
        torch.arange(batch, device=device)[:, None, None, None],
        torch.arange(images.shape[1], device=device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    if not return_pos:
        return patches
    x_pos = cols / (res_w - 1) * 2 - 1
    y_pos = rows / (res_h - 1) * 2 - 1
    pos = torch.stack(
        [x_pos[:, None, :].expand(batch, p, p), y_pos[:, :, None].expand(batch, p, p)], dim=1
    )
    return patches, pos


def check_patch_geometry(shape: tuple[int, ...], patch_size: Any, stride: Any) -> tuple[int, int]:
    """``(patch_size, stride)`` checked to tile an image of ``shape`` ``(B, C, H, W)`` fully."""
    if (patch_size is None) != (stride is None):
        raise ValueError(
            "patch_size and stride go together: give both (patch-based sampling) or neither."
        )
    p, s = _as_int("patch_size", patch_size), _as_int("stride", stride)
    if len(shape) != 4:
        raise ValueError(f"patch-based sampling needs images (B, C, H, W), got shape {shape}.")
    for side, size in (("height", shape[2]), ("width", shape[3])):
        if p > size:
            raise ValueError(f"patch_size {p} is larger than the image's {side} {size}.")
        if (size - p) % s:
            raise ValueError(
                f"patches of {p} every {s} pixels leave the last {(size - p) % s} pixels of the "
                f"{side} ({size}) uncovered: choose a stride dividing {size - p}."
            )
    return p, s


def patch_score(
    score_fn: PatchScoreFn,
    t: torch.Tensor,
    x: torch.Tensor,
    patch_size: int = 16,
    stride: int = 6,
    patch_chunk: int | None = None,
    *conditions: Any,
) -> torch.Tensor:
    """The ``(B, C, H, W)`` score of ``x`` averaged from its sliding-window patches.

    Every window position (``stride`` apart, in row-major order) is scored as
    ``score_fn(t, patches, pos_grids, *conditions)`` (``t`` repeated per patch,
    ``pos_grids`` from :func:`make_pos_grid`); each pixel gets the mean of the patch scores
    covering it. ``patch_chunk`` scores that many window positions (times ``B`` patches) per
    call, to bound memory; ``None`` scores them all at once.
    """
    batch, channels, height, width = x.shape
    p = patch_size
    windows = F.unfold(x, kernel_size=p, stride=stride)  # (B, C*p*p, L)
    n_windows = windows.shape[-1]
    ys, xs = torch.meshgrid(
        torch.arange(0, height - p + 1, stride, device=x.device),
        torch.arange(0, width - p + 1, stride, device=x.device),
        indexing="ij",
    )
    offsets = torch.arange(p, device=x.device)
    # Coordinate grids of every window, scaled by the height as make_pos_grid does.
    grid_x = _scaled(xs.reshape(-1, 1) + offsets, height)[:, None, :].expand(n_windows, p, p)
    grid_y = _scaled(ys.reshape(-1, 1) + offsets, height)[:, :, None].expand(n_windows, p, p)
    grids = torch.stack([grid_x, grid_y], dim=1)  # (L, 2, p, p)
    t = torch.as_tensor(t, device=x.device)
    t = t.reshape(1) if t.ndim == 0 else t

    step = n_windows if patch_chunk is None else max(1, int(patch_chunk))
    columns = []
    for start in range(0, n_windows, step):
        stop = min(start + step, n_windows)
        n = stop - start
        # Patches ordered image by image: (B, n) flattened.
        patches = windows[:, :, start:stop].transpose(1, 2).reshape(batch * n, channels, p, p)
        pos = grids[start:stop].repeat(batch, 1, 1, 1)
        t_patches = t.reshape(-1, 1).expand(batch, n).reshape(-1)
        scores = score_fn(t_patches, patches, pos, *conditions)
        columns.append(scores.reshape(batch, n, channels * p * p).transpose(1, 2))
    summed = F.fold(torch.cat(columns, dim=2), (height, width), kernel_size=p, stride=stride)
    ones = torch.ones((1, channels, height, width), device=x.device, dtype=summed.dtype)
    coverage = F.fold(
        F.unfold(ones, kernel_size=p, stride=stride), (height, width), kernel_size=p, stride=stride
    )
    return summed / coverage


def patch_score_vectorized(
    nn_handler: Any,
    t: torch.Tensor,
    x: torch.Tensor,
    patch_size: int = 16,
    stride: int = 6,
    patch_chunk: int | None = None,
    *conditions: Any,
) -> torch.Tensor:
    """:func:`patch_score` with ``nn_handler.score`` (``model(t, x, pos, ...) / sigma(t)``)."""
    return patch_score(nn_handler.score, t, x, patch_size, stride, patch_chunk, *conditions)
