"""``nn_handler.utils.ddp_init`` of the original's module map: joining the distributed job.

Re-exports from :mod:`nn_handler.utils.ddp`, where these functions live.
"""

from .ddp import (
    _first_host_from_slurm_nodelist,
    _initialize_distributed,
    _is_env_distributed,
    _pick_device,
    _resolve_device,
    _should_use_distributed,
    initialize_ddp,
)

__all__ = [
    "initialize_ddp",
    "_initialize_distributed",
    "_should_use_distributed",
    "_is_env_distributed",
    "_resolve_device",
    "_pick_device",
    "_first_host_from_slurm_nodelist",
]
