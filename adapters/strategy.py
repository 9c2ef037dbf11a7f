"""Distributed environment → Trainer ``strategy``/``devices``/``num_nodes`` arguments."""

from __future__ import annotations

from typing import Any

import torch

from nn_handler._dist_env import DistEnv

__all__ = ["strategy_arguments"]


def strategy_arguments(
    dist: DistEnv, device: torch.device, ddp_kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Trainer arguments for the process's distributed environment (none for one process)."""
    if not dist.distributed:
        return {}
    raise NotImplementedError("Distributed training is not available yet.")
