"""Per-epoch training history."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["History"]


@dataclass
class History:
    """Losses and metric values, one entry per epoch (validation entries only where it ran;
    ``val_epochs`` says which epochs those were, 1-based)."""

    train_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    train_metrics: dict[str, list[float]] = field(default_factory=dict)
    val_metrics: dict[str, list[float]] = field(default_factory=dict)
    val_epochs: list[int] = field(default_factory=list)

    @property
    def epochs_done(self) -> int:
        return len(self.train_losses)

    def validation_epochs(self, validate_every: int = 1) -> list[int]:
        """The epoch (1-based) of each ``val_losses`` entry.

        Recorded by :meth:`record`; for a history without that record (an older checkpoint):
        one entry per epoch when the lengths agree (the original NNHandler kept NaN for the
        epochs that did not validate), else every ``validate_every``-th epoch.
        """
        n = len(self.val_losses)
        if len(self.val_epochs) == n:
            return list(self.val_epochs)
        if n == len(self.train_losses):
            return list(range(1, n + 1))
        step = max(int(validate_every or 1), 1)
        return [step * (i + 1) for i in range(n)]

    def record(self, logs: dict[str, Any], metric_names: list[str]) -> None:
        """Append one epoch from its ``logs`` dict."""
        self.train_losses.append(float(logs["loss"]))
        for name in metric_names:
            if name in logs:
                self.train_metrics.setdefault(name, []).append(float(logs[name]))
        val_loss = logs.get("val_loss", math.nan)
        if not math.isnan(val_loss):
            self.val_losses.append(float(val_loss))
            self.val_epochs.append(len(self.train_losses))
            for name in metric_names:
                if f"val_{name}" in logs:
                    self.val_metrics.setdefault(name, []).append(float(logs[f"val_{name}"]))

    def state_dict(self) -> dict[str, Any]:
        return {
            "train_losses": list(self.train_losses),
            "val_losses": list(self.val_losses),
            "train_metrics_history": {k: list(v) for k, v in self.train_metrics.items()},
            "val_metrics_history": {k: list(v) for k, v in self.val_metrics.items()},
            "val_epochs": list(self.val_epochs),
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
        epochs = [int(e) for e in state.get("val_epochs") or []]
        # A record that does not match the losses it describes is dropped, not trusted.
        self.val_epochs = epochs if len(epochs) == len(self.val_losses) else []
