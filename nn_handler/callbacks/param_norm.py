"""``ParameterNormMonitor``: the global norm of the model's parameters."""

from __future__ import annotations

import math
from typing import Any

import torch

from ._common import bare_module, positive_int
from .base import Callback

__all__ = ["ParameterNormMonitor"]


class ParameterNormMonitor(Callback):
    """Add the norm of all model parameters to the epoch logs every ``log_freq_epoch`` epochs.

    The value goes to ``logs["param_norm_<norm_type>"]`` (e.g. ``param_norm_2``,
    ``param_norm_inf``) and to ``norms`` as ``(epoch, value)`` pairs (1-based epochs).

    Args:
        log_freq_epoch: compute it every N epochs.
        norm_type: the p of the p-norm (a number, or ``"inf"``).
    """

    def __init__(self, log_freq_epoch: int = 1, norm_type: float | int | str = 2):
        super().__init__()
        positive_int("ParameterNormMonitor", "log_freq_epoch", log_freq_epoch)
        if isinstance(norm_type, str):
            if norm_type.lower() != "inf":
                raise ValueError(
                    f"ParameterNormMonitor: norm_type must be a number or 'inf', got {norm_type!r}."
                )
            norm_type = math.inf
        self.log_freq_epoch = log_freq_epoch
        self.norm_type = float(norm_type) if not float(norm_type).is_integer() else norm_type
        self.key = f"param_norm_{'inf' if math.isinf(float(norm_type)) else norm_type}"
        self.norms: list[tuple[int, float]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if (epoch + 1) % self.log_freq_epoch:
            return
        params = [p.detach() for p in bare_module(self.handler).parameters()]
        if not params:
            return
        # One host sync per logged epoch.
        value = float(torch.nn.utils.get_total_norm(params, norm_type=float(self.norm_type)))
        self.norms.append((epoch + 1, value))
        if logs is not None:
            logs[self.key] = value

    def state_dict(self) -> dict[str, Any]:
        return {"norms": [list(n) for n in self.norms]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.norms = [(int(e), float(v)) for e, v in state_dict.get("norms", [])]
