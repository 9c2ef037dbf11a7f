"""Scaling an optimizer's learning rates: the module's ``lr`` property (where Lightning's tuner
writes) and ``find_lr(apply=True)``."""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["scale_learning_rate"]


def scale_learning_rate(optimizer: torch.optim.Optimizer, scheduler: Any, lr: float) -> None:
    """Give the first parameter group learning rate ``lr`` and every other group the same factor,
    so their ratios stay; a scheduler's base rates follow (its later steps start from ``lr``)."""
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"The learning rate must be a positive finite number, got {lr!r}.")
    groups = optimizer.param_groups
    old = float(groups[0]["lr"])
    for group in groups:
        group["lr"] = group["lr"] * lr / old if old > 0 else float(lr)
        if "initial_lr" in group:
            group["initial_lr"] = group["initial_lr"] * lr / old if old > 0 else float(lr)
    base = getattr(scheduler, "base_lrs", None)  # PyTorch's schedulers (not ReduceLROnPlateau)
    if isinstance(base, list):
        scheduler.base_lrs = [b * lr / old if old > 0 else float(lr) for b in base]
