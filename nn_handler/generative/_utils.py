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


def prior_distribution(
    sde: Any, sample_shape: tuple[int, ...], device: torch.device
) -> Distribution:
    """``sde.prior(D)`` for one sample's shape ``D``, on ``device`` when ``prior`` accepts one."""
    try:
        accepts_device = "device" in inspect.signature(sde.prior).parameters
    except (TypeError, ValueError):
        accepts_device = False
    if accepts_device:
        return sde.prior(sample_shape, device=device)
    return sde.prior(sample_shape)


def prior_sample(sde: Any, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """A batch of ``shape = (B, *D)`` drawn as ``sde.prior(D).sample([B])``, on ``device``."""
    batch, *sample_shape = shape
    x = prior_distribution(sde, tuple(sample_shape), device).sample([batch])
    if tuple(x.shape) != tuple(shape):
        raise ValueError(
            f"sde.prior({tuple(sample_shape)}).sample([{batch}]) returned shape "
            f"{tuple(x.shape)}, expected {tuple(shape)}. prior(D) takes the shape D of ONE "
            "sample (as in the original NNHandler and score_models), e.g. "
            "Independent(Normal(torch.zeros(D), sigma_max), len(D))."
        )
    return x.to(device)


def prior_log_prob(sde: Any, x: torch.Tensor) -> torch.Tensor:
    """``sde.prior(x.shape[1:]).log_prob(x)``: the per-sample log-density ``(B,)`` of ``x``.

    A prior whose ``log_prob`` keeps some sample dims (a plain elementwise ``Normal``) has
    them summed: its components are independent.
    """
    sample_shape = tuple(x.shape[1:])
    dist = prior_distribution(sde, sample_shape, x.device)
    try:
        log_prob = dist.log_prob(x)
    except RuntimeError:  # a prior built on another device
        log_prob = dist.log_prob(x.cpu())
    log_prob = log_prob.to(x.device)
    if log_prob.ndim == 0 or log_prob.shape[0] != x.shape[0]:
        raise ValueError(
            f"sde.prior({sample_shape}).log_prob(x) of a batch x of shape {tuple(x.shape)} "
            f"returned shape {tuple(log_prob.shape)}; it must be ({x.shape[0]},). prior(D) "
            "takes the shape D of ONE sample and its event shape must be D, e.g. "
            "Independent(Normal(torch.zeros(D), sigma_max), len(D))."
        )
    return log_prob.reshape(x.shape[0], -1).sum(dim=1)


def as_args(condition: Any) -> tuple:
    """Conditioning as extra model arguments: ``None`` → ``()``, a sequence → a tuple."""
    if condition is None:
        return ()
    if isinstance(condition, (list, tuple)):
        return tuple(condition)
    return (condition,)
