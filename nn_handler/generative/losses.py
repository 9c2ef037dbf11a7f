"""Training loss for score-based models."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from .patches import patchify
from .sde import broadcast_time

__all__ = [
    "denoising_score_matching",
    "patch_denoising_score_matching",
    "patchify_denoising_score_matching",
]


def denoising_score_matching(
    samples: torch.Tensor,
    sde: Any,
    model: Callable[..., torch.Tensor],
    device: torch.device | str | None,
    *args: Any,
) -> torch.Tensor:
    """Denoising score matching loss, weighted by ``sigma(t)^2``.

    Each sample gets a time ``t ~ U(epsilon, T)`` and is perturbed with the SDE's kernel,
    ``x_t = mean + std * z``. The model predicts ``sigma(t) * score``, whose target is
    ``-sigma(t) * z / std`` (``-z`` for the shipped SDEs, where ``sigma(t)`` is the kernel's std).

    Args:
        samples: a batch of data, shape ``(B, ...)``.
        sde: the SDE (see :mod:`nn_handler.generative.sde`).
        model: called as ``model(t, x_t, *args)``.
        device: where to compute (``None``: where ``samples`` are).
        *args: conditioning passed on to the model.

    Returns:
        The scalar loss: squared error summed over each sample's dimensions, averaged over the
        batch.
    """
    if not isinstance(samples, torch.Tensor):
        raise TypeError(
            "denoising_score_matching expects the batch as a tensor, got "
            f"{type(samples).__name__}; use a dataset whose first item is the data tensor."
        )
    x = samples if device is None else samples.to(device)
    if x.ndim < 2:
        raise ValueError(
            f"samples must have a batch dimension and data dimensions (B, ...), got shape "
            f"{tuple(x.shape)}; reshape 1-D data to (B, 1)."
        )
    batch = x.shape[0]
    t = torch.rand(batch, device=x.device, dtype=x.dtype) * (sde.T - sde.epsilon) + sde.epsilon
    z = torch.randn_like(x)
    mean, std = sde.marginal_prob(t, x)
    prediction = model(t, mean + std * z, *args)
    target = -broadcast_time(sde.sigma(t), x) * z / std
    return (prediction - target).pow(2).reshape(batch, -1).sum(dim=1).mean()


def _perturbation_times(batch: int, sde: Any, device: torch.device | str | None) -> torch.Tensor:
    """``t ~ U(epsilon, T)`` for each sample, drawn on the CPU as the original does (so a seed
    gives the same times on any device), then moved to ``device``."""
    return torch.rand(batch).to(device) * (sde.T - sde.epsilon) + sde.epsilon


def patch_denoising_score_matching(
    samples: torch.Tensor,
    sde: Any,
    model: Callable[..., torch.Tensor],
    device: torch.device | str | None,
    *args: Any,
) -> torch.Tensor:
    """Denoising score matching on patches that carry their coordinate grids.

    ``samples`` is ``(B, C + 2, p, p)``: ``C`` data channels, then the two channels of the
    patch's coordinate grid (as :func:`~nn_handler.generative.patches.patchify` returns them,
    concatenated). Only the data channels are noised; the model is called as
    ``model(t, x_t, pos_grids, *args)`` and its target is ``-z`` (``sigma(t) * score`` for SDEs
    whose ``sigma(t)`` is the perturbation's std, as ``VESDE`` and ``VPSDE``).

    Draws ``z`` (``randn_like``) first, then the times. Returns
    ``sum((z + model(...)) ** 2) / B``.
    """
    if not isinstance(samples, torch.Tensor) or samples.ndim < 3 or samples.shape[1] < 3:
        raise ValueError(
            "patch_denoising_score_matching expects patches with their coordinate grids as the "
            "last two channels, (B, C + 2, p, p); got "
            f"{tuple(getattr(samples, 'shape', ())) or type(samples).__name__}. To crop random "
            "patches from whole images, use patchify_denoising_score_matching(..., patch_sizes)."
        )
    pos_grids, x = samples[:, -2:], samples[:, :-2]
    batch = x.shape[0]
    z = torch.randn_like(x)
    t = _perturbation_times(batch, sde, x.device if device is None else device)
    mean, sigma = sde.marginal_prob(t, x)
    return torch.sum((z + model(t, mean + sigma * z, pos_grids, *args)) ** 2) / batch


def patchify_denoising_score_matching(
    samples: torch.Tensor,
    sde: Any,
    model: Callable[..., torch.Tensor],
    device: torch.device | str | None,
    patch_sizes: Sequence[int],
    patches_per_sample: int = 1,
    pass_grid: bool = True,
    *extra_conditions: Any,
) -> torch.Tensor:
    """Denoising score matching on random patches cropped from whole images.

    Each of the ``B`` images gives ``patches_per_sample`` patches, each of a side drawn from
    ``patch_sizes`` and cropped by :func:`~nn_handler.generative.patches.patchify`. The model is
    called as ``model(t, x_t, pos_grids, *conditions)`` (without ``pos_grids`` when
    ``pass_grid`` is false); a condition tensor with ``B`` rows is repeated per patch.

    Random draws, in order: the sizes (``randint`` on ``device``), each patch's corner, the noise
    ``z`` and the times ``t ~ U(epsilon, T)`` (on ``device``). Returns the squared error summed
    over each patch, averaged over the patches. Patches of different sizes are scored size by
    size (the draws of ``z`` and ``t`` then go size by size, in ``patch_sizes`` order).
    """
    if not isinstance(samples, torch.Tensor) or samples.ndim != 4:
        raise ValueError(
            "patchify_denoising_score_matching expects images (B, C, H, W), got "
            f"{tuple(getattr(samples, 'shape', ())) or type(samples).__name__}."
        )
    sizes = [int(p) for p in patch_sizes]
    if not sizes:
        raise ValueError("patch_sizes must name at least one patch size.")
    if isinstance(patches_per_sample, bool) or int(patches_per_sample) < 1:
        raise ValueError(f"patches_per_sample must be >= 1, got {patches_per_sample!r}.")
    repeats = int(patches_per_sample)
    batch = samples.shape[0]
    total = batch * repeats
    images = samples.repeat_interleave(repeats, dim=0)
    conditions = [
        c.repeat_interleave(repeats, dim=0)
        if isinstance(c, torch.Tensor) and c.ndim > 0 and c.shape[0] == batch
        else c
        for c in extra_conditions
    ]
    chosen = [sizes[k] for k in torch.randint(0, len(sizes), (total,), device=device).tolist()]
    crops = [patchify(images[n : n + 1], p, pass_grid) for n, p in enumerate(chosen)]

    loss_sum = samples.new_zeros(())
    for size in dict.fromkeys(p for p in sizes if p in chosen):
        picked = [n for n, p in enumerate(chosen) if p == size]
        if pass_grid:
            x = torch.cat([crops[n][0] for n in picked])
            grids = [torch.cat([crops[n][1] for n in picked])]
        else:
            x, grids = torch.cat([crops[n] for n in picked]), []
        index = torch.tensor(picked, device=samples.device)
        group_conditions = [
            c[index] if isinstance(c, torch.Tensor) and c.ndim > 0 and c.shape[0] == total else c
            for c in conditions
        ]
        z = torch.randn_like(x)
        t = torch.rand(len(picked), device=device) * (sde.T - sde.epsilon) + sde.epsilon
        mean, sigma = sde.marginal_prob(t, x)
        score = model(t, mean + sigma * z, *grids, *group_conditions)
        loss_sum = loss_sum + torch.sum((z + score) ** 2)
    return loss_sum / total
