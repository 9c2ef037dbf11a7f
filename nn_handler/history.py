"""Per-epoch training history."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["History"]


@dataclass
class History:
    """Losses and metric values, one entry per epoch (validation entries only where it ran)."""

    train_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    train_metrics: dict[str, list[float]] = field(default_factory=dict)
    val_metrics: dict[str, list[float]] = field(default_factory=dict)

    @property
    def epochs_done(self) -> int:
        return len(self.train_losses)

    def record(self, logs: dict[str, Any], metric_names: list[str]) -> None:
        """Append one epoch from its ``logs`` dict."""
        self.train_losses.append(float(logs["loss"]))
        for name in metric_names:
            if name in logs:
                self.train_metrics.setdefault(name, []).append(float(logs[name]))
        val_loss = logs.get("val_loss", math.nan)
        if not math.isnan(val_loss):
            self.val_losses.append(float(val_loss))
            for name in metric_names:
                if f"val_{name}" in logs:
                    self.val_metrics.setdefault(name, []).append(float(logs[f"val_{name}"]))

    def state_dict(self) -> dict[str, Any]:
        return {
            "train_losses": list(self.train_losses),
            "val_losses": list(self.val_losses),
            "train_metrics_history": {k: list(v) for k, v in self.train_metrics.items()},
            "val_metrics_history": {k: list(v) for k, v in self.val_metrics.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.train_losses = [float(v) for v in state.get("train_losses", [])]
        self.val_losses = [float(v) for v in state.get("val_losses", [])]
        self.train_metrics = {
            k: [float(x) for x in v] for k, v in state.get("train_metrics_history", {}).items()
        }
        self.val_metrics = {
            k: [float(x) for x in v] for k, v in state.get("val_metrics_history", {}).items()
        }
