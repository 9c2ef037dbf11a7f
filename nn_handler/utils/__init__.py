"""DDP utilities: set-up, rank-restricted calls, per-GPU parallel calls, reductions, broadcasts."""

from .ddp import (
    aggregate_loss,
    aggregate_metrics,
    broadcast_data,
    broadcast_if_ddp,
    initialize_ddp,
    on_rank,
    parallelize_on_gpus,
)

__all__ = [
    "initialize_ddp",
    "on_rank",
    "parallelize_on_gpus",
    "aggregate_loss",
    "aggregate_metrics",
    "broadcast_data",
    "broadcast_if_ddp",
]
