"""Reverse-time SDE sampling: Euler–Maruyama predictor with an optional Langevin corrector."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from tqdm.auto import tqdm

from ._utils import prior_sample, time_vector

__all__ = ["ScoreFn", "reverse_sde_sample"]

#: ``score_fn(t, x) -> score``, ``t`` of shape ``(B,)``.
ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _mean_norm(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(v.shape[0], -1).norm(dim=1).mean()


def _langevin(score: ScoreFn, t: torch.Tensor, x: torch.Tensor, snr: float) -> torch.Tensor:
    """One Langevin MCMC step whose size sets the signal-to-noise ratio to ``snr``.

    The norms are batch averages: a per-sample ratio explodes for samples where the score
    vanishes (near a mode), in low dimensions especially.
    """
    grad = score(t, x)
    noise = torch.randn_like(x)
    tiny = torch.finfo(x.dtype).tiny
    step = 2.0 * (snr * _mean_norm(noise) / _mean_norm(grad).clamp_min(tiny)) ** 2
    return x + step * grad + torch.sqrt(2.0 * step) * noise


@torch.no_grad()
def reverse_sde_sample(
    score_fn: ScoreFn,
    sde: Any,
    shape: tuple[int, ...],
    steps: int,
    device: torch.device,
    corrector_steps: int = 0,
    corrector_snr: float = 0.1,
    likelihood_score_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    guidance_factor: float = 1.0,
    bar: bool = True,
    stop_on_NaN: bool = True,
    on_step: Callable[[int, float, torch.Tensor], Any] | None = None,
    likelihood_with_score: bool = False,
) -> torch.Tensor:
    """Integrate the reverse SDE from ``T`` down to ``epsilon`` starting from the prior.

    Each of the ``steps`` steps runs ``corrector_steps`` Langevin steps at the current time,
    then one Euler–Maruyama step of the reverse SDE
    ``dx = [f(t, x) - g(t)^2 score(t, x)] dt + g(t) dw``. The last step adds no noise, so the
    result is the denoised mean. ``likelihood_score_fn(t, x)`` (computed with gradients
    enabled, e.g. for ``torch.autograd.grad``) is added to the score times ``guidance_factor``.
    ``on_step(i, t, x)`` is called after step ``i`` with the time ``t`` that ``x`` has reached.
    With ``likelihood_with_score`` it is called as ``likelihood_score_fn(t, x, score)``, the
    model's score as a third argument (patch-based sampling, as the original did).

    Returns:
        The samples, shape ``shape``. With ``stop_on_NaN``, a non-finite state stops the loop
        with a warning and the last finite state is returned.
    """
    T, eps = float(sde.T), float(sde.epsilon)

    def total_score(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        s = score_fn(t, x)
        if likelihood_score_fn is not None:
            with torch.enable_grad():
                extra = (s,) if likelihood_with_score else ()
                s = s + guidance_factor * likelihood_score_fn(t, x.detach(), *extra).detach()
        return s

    x = prior_sample(sde, tuple(shape), device)
    times = torch.linspace(T, eps, steps + 1, dtype=torch.float64).tolist()
    progress = tqdm(range(steps), desc="Sampling", disable=not bar, leave=False)
    shown_at = -math.inf
    for i in progress:
        t_now, t_next = times[i], times[i + 1]
        dt = t_next - t_now  # negative: time runs backwards
        t = time_vector(t_now, x)
        y = x
        for _ in range(corrector_steps):
            y = _langevin(total_score, t, y, corrector_snr)
        g = sde.diffusion(t, y)
        x_mean = y + (sde.drift(t, y) - g**2 * total_score(t, y)) * dt
        last = i == steps - 1
        x_new = x_mean if last else x_mean + g * math.sqrt(-dt) * torch.randn_like(y)
        if stop_on_NaN and not bool(torch.isfinite(x_new).all()):
            warnings.warn(
                f"Sampling produced NaN/inf at step {i} (t={t_now:.4g}); stopped and returned the "
                "last finite samples. Pass stop_on_NaN=False to keep going.",
                RuntimeWarning,
                stacklevel=5,  # the user's handler.sample(...) call
            )
            break
        x = x_new
        if on_step is not None:
            on_step(i, t_next, x)
        # The readout costs one host sync: taken only as often as tqdm redraws, and the last.
        if not progress.disable and (
            i == steps - 1 or time.monotonic() - shown_at >= progress.mininterval
        ):
            shown_at = time.monotonic()
            progress.set_postfix(_readout(sde, t, t_now, x), refresh=False)
    return x


def _readout(sde: Any, t: torch.Tensor, t_now: float, x: torch.Tensor) -> dict[str, str]:
    """The original's sampling-bar postfix: the step's time, its noise scale and the mean
    absolute value of the samples reached."""
    sigma, x_abs = torch.stack([sde.sigma(t).reshape(-1)[0].to(x.dtype), x.abs().mean()]).tolist()
    return {"t": f"{t_now:.3f}", "sigma": f"{sigma:.2e}", "|x|": f"{x_abs:.2e}"}
