"""The time grids of reverse-SDE sampling (the original's
``nn_handler.model_utils.score_models.schedules``, which re-exports them)."""

from __future__ import annotations

import math
from enum import Enum
from typing import Any

import torch

__all__ = ["TSchedule", "get_schedule_type", "get_t_schedule"]


class TSchedule(Enum):
    """How sampling times are spaced between ``T`` and ``epsilon``."""

    LINEAR = "linear"
    COSINE = "cosine"


def get_schedule_type(sde: Any) -> TSchedule:
    """``COSINE`` for an SDE whose class is named ``VPSDE`` (ours or another package's),
    ``LINEAR`` for any other."""
    return TSchedule.COSINE if type(sde).__name__ == "VPSDE" else TSchedule.LINEAR


def get_t_schedule(sde: Any, steps: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``steps + 1`` times from ``sde.T`` down to ``sde.epsilon`` (both included).

    Linear: evenly spaced (``torch.linspace``). Cosine (``VPSDE``):
    ``epsilon + (T - epsilon) * (1 + cos(pi * i / steps)) / 2`` for ``i = 0 .. steps``, finer
    near both ends.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}.")
    T, eps = sde.T, sde.epsilon
    if get_schedule_type(sde) is TSchedule.LINEAR:
        return torch.linspace(T, eps, steps + 1, device=device)
    times = [eps + 0.5 * (T - eps) * (1 + math.cos(math.pi * i / steps)) for i in range(steps + 1)]
    return torch.tensor(times, device=device)
