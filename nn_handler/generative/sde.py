"""Forward SDEs for score-based models: variance exploding (VE) and variance preserving (VP).

Any object with the same members works with ``NNHandler``: ``T``, ``epsilon``, ``sigma(t)``,
``marginal_prob(t, x) -> (mean, std)``, ``drift(t, x)``, ``diffusion(t, x)`` and ``prior(D)``.
``prior`` follows the convention of the original NNHandler and of the ``score_models`` package:
``D = x.shape[1:]`` is the shape of ONE sample, ``prior(D).sample([B])`` draws a batch
``(B, *D)`` and ``prior(D).log_prob(x)`` of such a batch is ``(B,)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch
from torch.distributions import Distribution, Independent, Normal

__all__ = ["SDE", "VESDE", "VPSDE", "REQUIRED_SDE_MEMBERS", "broadcast_time"]

#: What an SDE object must provide to be used by ``NNHandler``.
REQUIRED_SDE_MEMBERS = ("T", "epsilon", "sigma", "marginal_prob", "drift", "diffusion", "prior")


def broadcast_time(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample time (or noise level) ``(B,)`` to broadcast against ``x``."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.ndim == 0:
        return t
    return t.reshape(t.shape[0], *([1] * (x.ndim - 1)))


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}.")
    return float(value)


def _check_time(T: Any, epsilon: Any) -> tuple[float, float]:
    T = _positive("T", T)
    epsilon = _positive("epsilon", epsilon)
    if epsilon >= T:
        raise ValueError(f"epsilon ({epsilon}) must be smaller than T ({T}).")
    return T, epsilon


class SDE(ABC):
    """Base of the shipped SDEs: ``dx = drift(t, x) dt + diffusion(t, x) dw`` on ``[epsilon, T]``.

    ``hparams`` holds the constructor arguments, so the SDE can be rebuilt from a checkpoint.
    """

    T: float
    epsilon: float

    @property
    @abstractmethod
    def hparams(self) -> dict[str, float]:
        """Constructor keyword arguments that rebuild this SDE."""

    @abstractmethod
    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """Noise scale at time ``t`` (the model predicts ``sigma(t) * score``)."""

    @abstractmethod
    def marginal_prob(self, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of the perturbation kernel ``p_t(x_t | x_0 = x)``."""

    @abstractmethod
    def drift(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def diffusion(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def prior_std(self) -> float:
        """Standard deviation of the (zero-mean, isotropic) prior at ``t = T``."""

    def prior(self, shape: Sequence[int], device: torch.device | str | None = None) -> Distribution:
        """``N(0, prior_std^2 I)`` over ONE sample of shape ``shape`` (every dim an event dim).

        ``prior(D).sample([B])`` has shape ``(B, *D)``; ``prior(D).log_prob(x)`` of a batch
        ``(B, *D)`` has shape ``(B,)``.
        """
        shape = tuple(int(s) for s in shape)
        loc = torch.zeros(shape, device=device)
        return Independent(Normal(loc, torch.full_like(loc, self.prior_std())), len(shape))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())
        return f"{type(self).__name__}({args})"


class VESDE(SDE):
    """Variance exploding SDE: ``dx = g(t) dw`` with a geometric noise scale.

    ``sigma(t) = sigma_min * (sigma_max / sigma_min) ** (t / T)`` and
    ``g(t)^2 = d sigma(t)^2 / dt``; the prior is ``N(0, sigma_max^2 I)``.

    Args:
        sigma_min: smallest noise scale (at ``t = 0``); below the data's resolution.
        sigma_max: largest noise scale (at ``t = T``); about the largest distance between data.
        T: end time.
        epsilon: smallest time used in training and sampling (avoids ``t = 0``).
    """

    def __init__(self, sigma_min: float, sigma_max: float, T: float = 1.0, epsilon: float = 1e-5):
        self.sigma_min = _positive("sigma_min", sigma_min)
        self.sigma_max = _positive("sigma_max", sigma_max)
        if self.sigma_min >= self.sigma_max:
            raise ValueError(
                f"sigma_min ({sigma_min}) must be smaller than sigma_max ({sigma_max})."
            )
        self.T, self.epsilon = _check_time(T, epsilon)
        self._log_ratio = math.log(self.sigma_max / self.sigma_min)

    @property
    def hparams(self) -> dict[str, float]:
        return {
            "sigma_min": self.sigma_min,
            "sigma_max": self.sigma_max,
            "T": self.T,
            "epsilon": self.epsilon,
        }

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t)
        return self.sigma_min * torch.exp(self._log_ratio * t / self.T)

    def marginal_prob(self, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, broadcast_time(self.sigma(t), x)

    def drift(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    def diffusion(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        g = self.sigma(t) * math.sqrt(2.0 * self._log_ratio / self.T)
        return broadcast_time(g, x)

    def prior_std(self) -> float:
        return self.sigma_max


class VPSDE(SDE):
    """Variance preserving SDE: ``dx = -beta(t) x / 2 dt + sqrt(beta(t)) dw``.

    ``beta(t) = beta_min + (beta_max - beta_min) * t / T``; the marginal of ``x_0`` is
    ``N(alpha(t) x_0, (1 - alpha(t)^2) I)`` with ``alpha(t) = exp(-B(t) / 2)``,
    ``B(t) = int_0^t beta``; ``sigma(t) = sqrt(1 - alpha(t)^2)`` and the prior is ``N(0, I)``.

    Args:
        beta_min: noise rate at ``t = 0``.
        beta_max: noise rate at ``t = T``.
        T: end time.
        epsilon: smallest time used in training and sampling (avoids ``t = 0``).
    """

    def __init__(self, beta_min: float, beta_max: float, T: float = 1.0, epsilon: float = 1e-5):
        self.beta_min = _positive("beta_min", beta_min)
        self.beta_max = _positive("beta_max", beta_max)
        if self.beta_min > self.beta_max:
            raise ValueError(f"beta_min ({beta_min}) must not exceed beta_max ({beta_max}).")
        self.T, self.epsilon = _check_time(T, epsilon)

    @property
    def hparams(self) -> dict[str, float]:
        return {
            "beta_min": self.beta_min,
            "beta_max": self.beta_max,
            "T": self.T,
            "epsilon": self.epsilon,
        }

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t)
        return self.beta_min + (self.beta_max - self.beta_min) * t / self.T

    def _integral_beta(self, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t)
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2 / self.T

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(-torch.expm1(-self._integral_beta(t)))

    def marginal_prob(self, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = torch.exp(-0.5 * self._integral_beta(t))
        return broadcast_time(alpha, x) * x, broadcast_time(self.sigma(t), x)

    def drift(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -0.5 * broadcast_time(self.beta(t), x) * x

    def diffusion(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return broadcast_time(torch.sqrt(self.beta(t)), x)

    def prior_std(self) -> float:
        return 1.0
