"""Device-side running sums for one epoch stage, reduced across ranks once per epoch."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["EpochStats"]

Reducer = Callable[[torch.Tensor], torch.Tensor]


class EpochStats:
    """Sample-weighted loss and batch-averaged plain metrics, accumulated without host syncs.

    Losses are summed as ``loss * batch_size`` on the loss's device; the sample count is a Python
    int (known on the host). Plain metrics are averaged over batches, as the original does.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._loss_sum: torch.Tensor | float = 0.0
        self._count = 0
        self._metric_sums: dict[str, torch.Tensor | float] = {}
        self._metric_counts: dict[str, int] = {}

    @property
    def count(self) -> int:
        return self._count

    def add_loss(self, loss: torch.Tensor, n: int) -> None:
        if not isinstance(self._loss_sum, torch.Tensor):
            self._loss_sum = torch.zeros((), dtype=torch.float64, device=loss.device)
        self._loss_sum.add_(loss.detach(), alpha=n)  # one in-place op, accumulated in float64
        self._count += n

    def add_metric(self, name: str, value: Any) -> None:
        total = self._metric_sums.get(name, 0.0)
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:  # the shape is known on the host: checking it costs no sync
                raise ValueError(
                    f"Metric {name!r} returned a tensor of shape {tuple(value.shape)}; a metric "
                    "must return one number per batch, e.g. (outputs.argmax(1) == targets)"
                    ".float().mean(). For several values, add one metric per value."
                )
            # A one-element value adds in place into the float64 sum (one op, no new tensor).
            value = value.detach().reshape(())
            if isinstance(total, torch.Tensor):
                total.add_(value)
            else:
                self._metric_sums[name] = value.to(torch.float64) + total  # a new tensor
        else:
            self._metric_sums[name] = total + _number(name, value)
        self._metric_counts[name] = self._metric_counts.get(name, 0) + 1

    def state_dict(self) -> dict[str, Any]:
        """The running sums, for a checkpoint written inside an epoch."""
        return {
            "loss_sum": self._loss_sum,
            "count": self._count,
            "metric_sums": dict(self._metric_sums),
            "metric_counts": dict(self._metric_counts),
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        """Continue from :meth:`state_dict`'s sums (tensors moved to ``device``)."""

        def placed(value: Any) -> Any:
            if isinstance(value, torch.Tensor):
                return value.to(device=device, dtype=torch.float64)
            return float(value)

        self._loss_sum = placed(state["loss_sum"])
        self._count = int(state["count"])
        self._metric_sums = {str(k): placed(v) for k, v in state["metric_sums"].items()}
        self._metric_counts = {str(k): int(v) for k, v in state["metric_counts"].items()}

    def reduce(self, device: torch.device, all_reduce: Reducer | None = None) -> dict[str, float]:
        """Return ``{"loss": mean, name: mean, ...}`` over all ranks with one collective."""
        names = list(self._metric_sums)
        parts = [self._loss_sum, float(self._count)]
        for name in names:
            parts += [self._metric_sums[name], float(self._metric_counts[name])]
        packed = torch.stack(
            [torch.as_tensor(p, dtype=torch.float64).to(device).reshape(()) for p in parts]
        )
        if all_reduce is not None:
            packed = all_reduce(packed)
        values = packed.tolist()
        out = {"loss": values[0] / values[1] if values[1] else math.nan}
        for i, name in enumerate(names):
            total, count = values[2 + 2 * i], values[3 + 2 * i]
            out[name] = total / count if count else math.nan
        return out


def _number(name: str, value: Any) -> float:
    """``float(value)`` for a metric's non-tensor value, or a TypeError naming the metric.

    Only reached for values that are not tensors (those never sync here), so the check is free
    for the usual case; a string is refused even when it reads as a number.
    """
    if not isinstance(value, (str, bytes)) and hasattr(type(value), "__float__"):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise TypeError(
        f"Metric {name!r} returned {type(value).__name__} ({shown}); a metric must return a "
        "number or a tensor, e.g. return (outputs.argmax(1) == targets).float().mean()."
    )
