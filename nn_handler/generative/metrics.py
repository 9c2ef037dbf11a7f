"""Sample-quality figures for generative models."""

from __future__ import annotations

import torch

__all__ = ["sliced_wasserstein"]


@torch.no_grad()
def sliced_wasserstein(
    a: torch.Tensor,
    b: torch.Tensor,
    n_projections: int = 256,
    n_quantiles: int = 256,
    generator: torch.Generator | None = None,
) -> float:
    """Sliced 2-Wasserstein distance between two sample sets of shape ``(N, ...)``, ``(M, ...)``.

    Both sets are projected on ``n_projections`` random unit directions; each 1-D distance is
    computed between ``n_quantiles`` matched quantiles, so ``N`` and ``M`` may differ.
    """
    a = a.detach().reshape(a.shape[0], -1).double().cpu()
    b = b.detach().reshape(b.shape[0], -1).double().cpu()
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"The sample sets differ in dimension: {a.shape[1]} vs {b.shape[1]}.")
    directions = torch.randn(a.shape[1], n_projections, generator=generator, dtype=torch.float64)
    directions = directions / directions.norm(dim=0, keepdim=True)
    levels = (torch.arange(n_quantiles, dtype=torch.float64) + 0.5) / n_quantiles
    qa = torch.quantile(a @ directions, levels, dim=0)
    qb = torch.quantile(b @ directions, levels, dim=0)
    return float((qa - qb).pow(2).mean().sqrt())
