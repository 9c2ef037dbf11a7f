"""Training loss for score-based models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .sde import broadcast_time

__all__ = ["denoising_score_matching"]


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
