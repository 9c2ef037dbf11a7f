"""Log-likelihood through the probability-flow ODE with Hutchinson's trace estimator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from tqdm.auto import tqdm

from ._utils import prior_log_prob, time_vector

__all__ = ["ODE_METHODS", "NOISE_TYPES", "probability_flow_log_likelihood"]

ODE_METHODS = ("euler", "heun", "rk4")
NOISE_TYPES = ("rademacher", "gaussian")

# Butcher tableaus (stage offsets, stage coefficients, weights) of the explicit methods.
_TABLEAUS: dict[str, tuple[list[float], list[list[float]], list[float]]] = {
    "euler": ([0.0], [[]], [1.0]),
    "heun": ([0.0, 1.0], [[], [1.0]], [0.5, 0.5]),
    "rk4": (
        [0.0, 0.5, 0.5, 1.0],
        [[], [0.5], [0.0, 0.5], [0.0, 0.0, 1.0]],
        [1 / 6, 1 / 3, 1 / 3, 1 / 6],
    ),
}


def _probes(x: torch.Tensor, n: int, noise_type: str) -> torch.Tensor:
    if noise_type == "rademacher":
        return torch.randint(0, 2, (n, *x.shape), device=x.device).to(x.dtype) * 2 - 1
    return torch.randn((n, *x.shape), device=x.device, dtype=x.dtype)


def _check_choice(name: str, value: Any, choices: tuple[str, ...], aliases: dict[str, str]) -> str:
    key = str(value).lower()
    key = aliases.get(key, key)
    if key not in choices:
        raise ValueError(f"Unknown {name} {value!r}; choose one of {', '.join(choices)}.")
    return key


def probability_flow_log_likelihood(
    score_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    sde: Any,
    x: torch.Tensor,
    ode_steps: int,
    n_cotangent_vectors: int = 1,
    noise_type: str = "rademacher",
    method: str = "Euler",
    t0: float | None = None,
    t1: float | None = None,
    pbar: bool = False,
) -> torch.Tensor:
    """``log p(x)`` per sample by integrating the probability-flow ODE from ``t0`` to ``t1``.

    ``dx/dt = f(t, x) - g(t)^2 score(t, x) / 2``; ``log p_t0(x) = log p_T(x_t1) + int div``.
    The divergence is estimated as the mean of ``v^T J v`` over ``n_cotangent_vectors`` probes
    ``v`` (Rademacher or Gaussian), drawn afresh each step and shared by a step's stages.

    Args:
        score_fn: ``score_fn(t, x) -> score`` with ``t`` of shape ``(B,)``.
        sde: the SDE.
        x: data, shape ``(B, ...)``.
        ode_steps: number of uniform steps from ``t0`` to ``t1``.
        n_cotangent_vectors: probes per step (more: lower variance).
        noise_type: ``"rademacher"`` or ``"gaussian"``.
        method: ``"Euler"``, ``"Heun"`` (2nd order) or ``"RK4"`` (case-insensitive).
        t0, t1: integration bounds (default ``sde.epsilon`` and ``sde.T``).
        pbar: show a progress bar.

    Returns:
        A ``(B,)`` tensor of log-densities (no gradient attached).
    """
    method = _check_choice("method", method, ODE_METHODS, {"runge-kutta": "rk4", "rk": "rk4"})
    noise_type = _check_choice("noise_type", noise_type, NOISE_TYPES, {"normal": "gaussian"})
    if isinstance(ode_steps, bool) or not isinstance(ode_steps, int) or ode_steps < 1:
        raise ValueError(f"ode_steps must be a positive integer, got {ode_steps!r}.")
    if (
        isinstance(n_cotangent_vectors, bool)
        or not isinstance(n_cotangent_vectors, int)
        or n_cotangent_vectors < 1
    ):
        raise ValueError(
            f"n_cotangent_vectors must be a positive integer, got {n_cotangent_vectors!r}."
        )
    t0 = float(sde.epsilon if t0 is None else t0)
    t1 = float(sde.T if t1 is None else t1)
    if not t0 < t1:
        raise ValueError(f"t0 ({t0}) must be smaller than t1 ({t1}).")

    def flow_and_divergence(
        t: float, x: torch.Tensor, probes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            tv = time_vector(t, x)
            g = sde.diffusion(tv, x)
            flow = sde.drift(tv, x) - 0.5 * g**2 * score_fn(tv, x)
            div = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
            if flow.requires_grad:
                for k, v in enumerate(probes):
                    (vjp,) = torch.autograd.grad(
                        flow, x, v, retain_graph=k < len(probes) - 1, allow_unused=True
                    )
                    if vjp is not None:
                        div = div + (vjp * v).reshape(x.shape[0], -1).sum(dim=1)
        return flow.detach(), div.detach() / len(probes)

    offsets, coefficients, weights = _TABLEAUS[method]
    h = (t1 - t0) / ode_steps
    x = x.detach()
    delta = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
    for n in tqdm(range(ode_steps), desc="Log-likelihood", disable=not pbar, leave=False):
        t = t0 + n * h
        probes = _probes(x, n_cotangent_vectors, noise_type)
        flows: list[torch.Tensor] = []
        divs: list[torch.Tensor] = []
        for offset, coef in zip(offsets, coefficients):
            xs = x
            for c, k in zip(coef, flows):
                if c:
                    xs = xs + h * c * k
            flow, div = flow_and_divergence(t + offset * h, xs, probes)
            flows.append(flow)
            divs.append(div)
        x = x + h * sum(w * k for w, k in zip(weights, flows))
        delta = delta + h * sum(w * d for w, d in zip(weights, divs))
    return prior_log_prob(sde, x) + delta
