"""``LearningRateMonitor``: record the learning rate of every parameter group, every epoch."""

from __future__ import annotations

from typing import Any

from ._common import is_rank_zero
from .base import Callback

__all__ = ["LearningRateMonitor"]


class LearningRateMonitor(Callback):
    """Keep the learning rates used in each epoch and make sure the logs carry them.

    After each epoch, ``lrs`` gains one list (one value per optimizer parameter group) and the logs
    hold ``lr`` (first group) and ``lr_group_<i>``, the rates used during that epoch.

    Args:
        verbose: 1 prints the rates each epoch (rank 0).
    """

    def __init__(self, verbose: int = 0):
        super().__init__()
        self.verbose = int(verbose)
        self.lrs: list[list[float]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        optimizer = getattr(self.handler, "optimizer", None)
        if optimizer is None:
            return
        if logs is None:
            logs = {}
        rates = []
        for i, group in enumerate(optimizer.param_groups):
            # The logs hold the rate used during the epoch; the scheduler has stepped since.
            rates.append(float(logs.setdefault(f"lr_group_{i}", float(group["lr"]))))
        logs.setdefault("lr", rates[0])
        self.lrs.append(rates)
        if self.verbose > 0 and is_rank_zero(self.handler):
            shown = ", ".join(f"{r:.3e}" for r in rates)
            print(f"Epoch {epoch + 1}: learning rate(s) {shown}")

    def state_dict(self) -> dict[str, Any]:
        return {"lrs": [list(r) for r in self.lrs]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.lrs = [list(r) for r in state_dict.get("lrs", [])]
