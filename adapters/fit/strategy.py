"""Distributed environment → the process group and the Trainer's strategy arguments.

The process group is created at handler construction exactly as Lightning's ``DDPStrategy``
would create it (same cluster environment, backend and ``_init_dist_connection``), so that the
Trainer finds it initialised and reuses it instead of creating a second one.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import torch

from ..._env.dist_env import DistEnv
from .process_group import remember_created_group

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "TIMEOUT_ENV",
    "FIND_UNUSED_ENV",
    "collective_timeout",
    "cluster_environment",
    "process_group_backend",
    "ensure_process_group",
    "strategy_arguments",
]

#: Seconds a collective may wait for the other ranks before the job fails (Lightning's default).
DEFAULT_TIMEOUT_S = 1800
#: Environment variable overriding :data:`DEFAULT_TIMEOUT_S` (seconds).
TIMEOUT_ENV = "NN_HANDLER_DDP_TIMEOUT"
#: Environment variable switching DDP's ``find_unused_parameters`` on (``true``/``1``/``yes``).
FIND_UNUSED_ENV = "DDP_FIND_UNUSED_PARAMETERS"

_PACKAGES = ("fabric", "pytorch")
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


def collective_timeout(
    timeout: float | timedelta | None = None, env: Mapping[str, str] | None = None
) -> timedelta:
    """The collective timeout: ``timeout`` (seconds or timedelta), else $NN_HANDLER_DDP_TIMEOUT,
    else 30 minutes."""
    if timeout is None:
        raw = (os.environ if env is None else env).get(TIMEOUT_ENV, "")
        try:
            timeout = float(raw) if raw.strip() else DEFAULT_TIMEOUT_S
        except ValueError as err:
            raise ValueError(f"{TIMEOUT_ENV}={raw!r} must be a number of seconds.") from err
    if isinstance(timeout, timedelta):
        seconds = timeout.total_seconds()
    elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        seconds = float(timeout)
    else:
        raise TypeError(f"timeout must be seconds or a datetime.timedelta, got {timeout!r}.")
    if not seconds > 0:
        raise ValueError(f"The collective timeout must be positive, got {seconds} s.")
    return timedelta(seconds=seconds)


def cluster_environment(dist: DistEnv) -> Any:
    """Lightning's cluster environment for the launcher that started this process."""
    from lightning.fabric.plugins.environments import TorchElasticEnvironment

    if dist.source == "torchrun":
        return TorchElasticEnvironment()
    if dist.source == "slurm":
        return _slurm_environment_type()()
    raise ValueError(f"No cluster environment for a process that is not distributed ({dist}).")


@functools.cache
def _slurm_environment_type() -> type:
    """Lightning's ``SLURMEnvironment`` reading the main node with nn_handler's node-list parser
    (the one ``nn_handler_run`` uses), so that both agree on lists such as ``c[01-02]n[1-2]``."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    from ..._env.slurm_hosts import first_host

    class _SLURMEnvironment(SLURMEnvironment):
        @staticmethod
        def resolve_root_node_address(nodes: str) -> str:
            return first_host(nodes)

    return _SLURMEnvironment


def process_group_backend(device: torch.device) -> str:
    """``nccl`` for CUDA devices, ``gloo`` otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


def ensure_process_group(
    dist: DistEnv, device: torch.device, timeout: float | timedelta | None = None
) -> None:
    """Create the default process group for ``dist`` unless one exists (no-op for one process).

    A group created here is destroyed at interpreter exit (:mod:`.process_group`); an existing
    one is reused and left to whoever created it.

    Raises:
        RuntimeError: an existing process group disagrees with ``dist``.
    """
    if not dist.distributed:
        return
    import torch.distributed as tdist

    if tdist.is_initialized():
        if (tdist.get_world_size(), tdist.get_rank()) != (dist.world_size, dist.rank):
            raise RuntimeError(
                f"A process group already exists with world size {tdist.get_world_size()} and "
                f"rank {tdist.get_rank()}, but the environment says {dist.world_size} and "
                f"{dist.rank}."
            )
        return
    from lightning.fabric.utilities.distributed import _init_dist_connection

    kwargs: dict[str, Any] = {"timeout": collective_timeout(timeout)}
    if device.type == "cuda":
        torch.cuda.set_device(device)
        kwargs["device_id"] = device  # as DDPStrategy.setup_distributed: eager NCCL init
    # Lightning logs each rank joining and a start banner at INFO; the handler stays quiet.
    banners = [logging.getLogger(f"lightning.{p}.utilities.rank_zero") for p in _PACKAGES]
    banners.append(logging.getLogger("lightning.fabric.utilities.distributed"))
    levels = [log.level for log in banners]
    for log in banners:
        log.setLevel(logging.WARNING)
    try:
        _init_dist_connection(
            cluster_environment(dist),
            process_group_backend(device),
            global_rank=dist.rank,
            world_size=dist.world_size,
            **kwargs,
        )
    finally:
        for log, level in zip(banners, levels):
            log.setLevel(level)
    remember_created_group()


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
