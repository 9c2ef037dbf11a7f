"""The epoch's collectives under DDP: one all-reduce each, nothing per step.

Lightning's ``strategy.reduce`` runs a barrier before every all-reduce, a second collective the
all-reduce makes unnecessary (it returns only once every rank has contributed); under
``DDPStrategy`` the epoch's values and its stop decision therefore go through one
``torch.distributed.all_reduce`` each, on the group the strategy reduces over. Other strategies
keep their own ``reduce`` (they may reduce over another group or need their own call).
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.distributed as tdist
from lightning.pytorch.strategies import DDPStrategy

__all__ = ["any_rank", "sum_over_ranks"]


def _direct(strategy: Any) -> bool:
    return isinstance(strategy, DDPStrategy) and tdist.is_available() and tdist.is_initialized()


def sum_over_ranks(strategy: Any, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over every rank (in place where the backend reduces in place)."""
    if _direct(strategy):
        tdist.all_reduce(tensor, op=tdist.ReduceOp.SUM)
        return tensor
    return cast(torch.Tensor, strategy.reduce(tensor, reduce_op="sum"))


def any_rank(strategy: Any, decision: bool) -> bool:
    """Whether ``decision`` holds on at least one rank."""
    if _direct(strategy):
        flag = torch.tensor(int(decision), device=strategy.root_device)
        tdist.all_reduce(flag, op=tdist.ReduceOp.SUM)
        return bool(flag.item())
    return bool(strategy.reduce_boolean_decision(decision, all=False))
