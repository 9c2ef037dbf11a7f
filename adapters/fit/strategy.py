"""Distributed environment → the process group and the Trainer's strategy arguments.

The process group itself is created at handler construction, in the core
(:func:`nn_handler._env.process_group.ensure_process_group`), exactly as ``DDPStrategy`` would
create it, so that the Trainer finds it initialised and reuses it.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any

import torch

from ..._env.dist_env import DistEnv
from ..._env.process_group import cluster_environment, collective_timeout, process_group_backend

__all__ = ["FIND_UNUSED_ENV", "strategy_arguments"]

#: Environment variable switching DDP's ``find_unused_parameters`` on (``true``/``1``/``yes``).
FIND_UNUSED_ENV = "DDP_FIND_UNUSED_PARAMETERS"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# Decided by the handler from the environment, never by ddp_kwargs.
_OWNED = {
    "self",
    "kwargs",
    "accelerator",
    "parallel_devices",
    "cluster_environment",
    "checkpoint_io",
    "precision_plugin",
    "start_method",
    "module",
    "device_ids",
    "output_device",
    "dim",
    "process_group",
    "device_mesh",
}


def _env_flag(env: Mapping[str, str], key: str) -> bool | None:
    raw = env.get(key)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{key}={raw!r}: use true or false.")


def _accepted_ddp_kwargs() -> set[str]:
    from lightning.pytorch.strategies import DDPStrategy
    from torch.nn.parallel import DistributedDataParallel

    names = set(inspect.signature(DDPStrategy.__init__).parameters)
    names |= set(inspect.signature(DistributedDataParallel.__init__).parameters)
    return names - _OWNED


def _check_ddp_kwargs(ddp_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(ddp_kwargs, Mapping):
        raise TypeError(f"ddp_kwargs must be a dict, got {type(ddp_kwargs).__name__}.")
    accepted = _accepted_ddp_kwargs()
    unknown = sorted(set(ddp_kwargs) - accepted)
    if unknown:
        owned = sorted(set(unknown) & _OWNED)
        why = (
            f"{owned} are decided from the launcher's environment"
            if owned
            else "neither DDPStrategy nor DistributedDataParallel takes them"
        )
        raise TypeError(
            f"ddp_kwargs has {unknown}: {why}. Accepted keys: {', '.join(sorted(accepted))}."
        )
    return dict(ddp_kwargs)


def strategy_arguments(
    dist: DistEnv,
    device: torch.device,
    ddp_kwargs: Mapping[str, Any] | None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Trainer arguments for the process's distributed environment (none for one process).

    Returns ``strategy`` (a ``DDPStrategy`` with the launcher's cluster environment, gloo on CPU
    or nccl on CUDA, the collective timeout and the DDP options), ``accelerator``, ``devices``
    (processes per node) and ``num_nodes``. ``find_unused_parameters`` comes from ``ddp_kwargs``,
    else from $DDP_FIND_UNUSED_PARAMETERS, else False.
    """
    options = _check_ddp_kwargs(ddp_kwargs or {})
    if not dist.distributed or dist.source == "lightning":
        # One process, or one Lightning started: the Trainer's own arguments choose again.
        return {}
    from lightning.pytorch.strategies import DDPStrategy

    env = os.environ if env is None else env
    if "find_unused_parameters" not in options:
        options["find_unused_parameters"] = bool(_env_flag(env, FIND_UNUSED_ENV))
    options.setdefault("timeout", collective_timeout(env=env))
    options.setdefault("process_group_backend", process_group_backend(device))
    strategy = DDPStrategy(cluster_environment=cluster_environment(dist), **options)
    return {
        "strategy": strategy,
        "accelerator": "gpu" if device.type == "cuda" else "cpu",
        "devices": dist.local_world_size,
        "num_nodes": dist.num_nodes,
    }
