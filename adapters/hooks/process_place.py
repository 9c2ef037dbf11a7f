"""In a process Lightning started: the handler learns its rank, world size and device at setup."""

from __future__ import annotations

import lightning as L

from ..._env.dist_env import DistEnv
from ..._state.logger_spec import LoggerSpec
from ..._state.run_state import RunState
from ..._state.runtime import Runtime

__all__ = ["ProcessPlace"]


class ProcessPlace(L.Callback):
    """In a process Lightning started: the handler's rank, world size, device and logger.

    At ``setup`` (before any other hook of the run) the runtime's ``dist`` and ``device`` become
    this process's, so ``handler._rank``, ``_world_size`` and ``_distributed`` are right for
    native callbacks; the handler's logger writes on rank 0 only, as under torchrun.

    Args:
        state: the run state (its EMA follows the model to this process's device).
        runtime: the runtime whose ``dist`` and ``device`` are set.
    """

    def __init__(self, state: RunState, runtime: Runtime):
        self.state = state
        self.runtime = runtime
        self.logger_spec = LoggerSpec.of(runtime.logger)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        runtime = self.runtime
        runtime.dist = DistEnv(
            distributed=True,
            rank=trainer.global_rank,
            local_rank=trainer.local_rank,
            world_size=trainer.world_size,
            source="lightning",
            local_world_size=trainer.num_devices,
            num_nodes=trainer.num_nodes,
            node_rank=trainer.node_rank,
        )
        runtime.device = trainer.strategy.root_device
        if self.state.ema is not None:
            self.state.ema.to(runtime.device)
        self.logger_spec.apply(trainer.global_rank)
