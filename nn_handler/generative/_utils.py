"""Small helpers shared by sampling and likelihood: time vectors and the SDE's prior."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch.distributions import Distribution

__all__ = ["time_vector", "prior_distribution", "prior_sample", "prior_log_prob", "as_args"]


def time_vector(t: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``t`` as a ``(B,)`` tensor on ``x``'s device and dtype (a scalar is repeated)."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.ndim == 0:
        return t.expand(x.shape[0])
    if t.shape != (x.shape[0],):
        raise ValueError(
            f"t must be a scalar or have shape (batch,) = ({x.shape[0]},), got {tuple(t.shape)}."
        )
    return t


def prior_distribution(sde: Any, shape: tuple[int, ...], device: torch.device) -> Distribution:
    """``sde.prior(shape)``, built on ``device`` when the SDE's ``prior`` accepts one."""
    try:
        accepts_device = "device" in inspect.signature(sde.prior).parameters
    except (TypeError, ValueError):
        accepts_device = False
    return sde.prior(shape, device=device) if accepts_device else sde.prior(shape)


def prior_sample(sde: Any, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """One draw of ``shape`` from the SDE's prior, on ``device``."""
    x = prior_distribution(sde, shape, device).sample()
    if tuple(x.shape) != tuple(shape):
        raise ValueError(
            f"sde.prior({shape}).sample() returned shape {tuple(x.shape)}; the prior must be a "
            "distribution whose sample() has the requested shape."
        )
    return x.to(device)


def prior_log_prob(sde: Any, x: torch.Tensor) -> torch.Tensor:
    """Per-sample log-density ``(B,)`` of ``x`` under the prior (event dims summed)."""
    dist = prior_distribution(sde, tuple(x.shape), x.device)
    try:
        log_prob = dist.log_prob(x)
    except RuntimeError:  # a prior built on another device
        log_prob = dist.log_prob(x.cpu())
    log_prob = log_prob.to(x.device)
    if log_prob.ndim == 0:
        raise ValueError(
            "sde.prior(shape).log_prob(x) returned a scalar; the prior's batch shape must keep "
            "the sample dimension (e.g. Independent(Normal(...), len(shape) - 1))."
        )
    return log_prob.reshape(x.shape[0], -1).sum(dim=1)


def as_args(condition: Any) -> tuple:
    """Conditioning as extra model arguments: ``None`` → ``()``, a sequence → a tuple."""
    if condition is None:
        return ()
    if isinstance(condition, (list, tuple)):
        return tuple(condition)
    return (condition,)
