"""The exponential moving average of a model's weights behind ``train(ema_decay=...)``."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["ExponentialMovingAverage"]


class ExponentialMovingAverage(nn.Module):
    """An averaged copy of a model, updated after every optimizer step.

    The average follows the original NNHandler's (``torch_ema``'s default, with update counting):

    - it starts from the model's weights when it is created, before the first step;
    - at the ``n``-th update (``n = 1, 2, ...``) the decay is ``d = min(decay, (1 + n) / (10 + n))``
      and every parameter's average becomes ``d * average + (1 - d) * parameter`` (a parameter
      that never changes keeps its value);
    - buffers (BatchNorm statistics) are not averaged: the copy takes the model's own buffers at
      every update, as evaluating the original's averaged parameters in the live model does.

    Attributes:
        module: the averaged copy of the model (``nn.Module``), used by
            ``predict(apply_ema=True)``, ``sample`` and ``log_likelihood``.
        decay: the decay once warmed up (``float`` in ``(0, 1)``).
        n_averaged: the number of updates so far (a buffer: it is saved with the weights, so a
            resumed run warms up exactly where the saved one stopped).

    The state dict holds ``n_averaged`` and ``module.<name>`` for every parameter and buffer, the
    layout the earlier ``AveragedModel``-based EMA saved, so its files load unchanged.
    """

    n_averaged: torch.Tensor  # a registered buffer

    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay!r}.")
        self.module = copy.deepcopy(model)
        self.module.requires_grad_(False)
        self.decay = float(decay)
        device = next(model.parameters(), torch.empty(0)).device
        self.register_buffer("n_averaged", torch.tensor(0, dtype=torch.long, device=device))
        # A host copy of n_averaged: the decay of each update is computed without a device sync.
        self._updates = 0

    def decay_at(self, n: int) -> float:
        """The decay used by the ``n``-th update (1-based)."""
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        """Fold ``model``'s current weights into the average (call after an optimizer step)."""
        self._updates += 1
        weight = 1.0 - self.decay_at(self._updates)
        averaged: list[torch.Tensor] = []
        current: list[torch.Tensor] = []
        # Tensors: parameters in the first loop, buffers in the second.
        avg: torch.Tensor
        live: torch.Tensor
        for avg, live in zip(self.module.parameters(), model.parameters(), strict=True):
            if avg.is_floating_point() or avg.is_complex():
                averaged.append(avg)
                current.append(live.detach())
            else:
                avg.copy_(live)
        if averaged:
            # lerp: avg + (1 - d) * (live - avg) == d * avg + (1 - d) * live
            torch._foreach_lerp_(averaged, current, weight)
        for avg, live in zip(self.module.buffers(), model.buffers(), strict=True):
            avg.copy_(live)
        self.n_averaged.add_(1)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._updates = int(self.n_averaged)
