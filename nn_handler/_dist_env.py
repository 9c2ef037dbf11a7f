"""Which process of a distributed job this is, read from torchrun's or SLURM's variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DistEnv", "detect_distributed"]


@dataclass(frozen=True)
class DistEnv:
    """The process's place in the job. ``source`` is ``"torchrun"``, ``"slurm"`` or ``None``."""

    distributed: bool = False
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    source: str | None = None


def _int(env: Mapping[str, str], key: str, default: int | None = None) -> int | None:
    value = env.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as err:
        raise ValueError(f"Environment variable {key}={value!r} is not an integer.") from err


def detect_distributed(
    use_distributed: bool | None, env: Mapping[str, str] | None = None
) -> DistEnv:
    """Resolve ``use_distributed`` (True / False / None = auto) against the environment.

    torchrun's variables win over SLURM's, as in Lightning, since torchrun can run inside SLURM.
    """
    env = os.environ if env is None else env
    if use_distributed is False:
        return DistEnv()
    found = DistEnv()
    world = _int(env, "WORLD_SIZE")
    if world is not None and "RANK" in env:
        found = DistEnv(
            distributed=world > 1,
            rank=_int(env, "RANK", 0),
            local_rank=_int(env, "LOCAL_RANK", 0),
            world_size=world,
            source="torchrun",
        )
    elif "SLURM_NTASKS" in env and "SLURM_PROCID" in env:
        world = _int(env, "SLURM_NTASKS", 1)
        found = DistEnv(
            distributed=world > 1,
            rank=_int(env, "SLURM_PROCID", 0),
            local_rank=_int(env, "SLURM_LOCALID", 0),
            world_size=world,
            source="slurm",
        )
    if use_distributed is True and not found.distributed:
        raise RuntimeError(
            "use_distributed=True but this process is not part of a distributed job with more "
            "than one process (no RANK/WORLD_SIZE from torchrun nor SLURM_PROCID/SLURM_NTASKS). "
            "Launch with `torchrun --nproc_per_node=N script.py` or `srun`, or pass "
            "use_distributed=None to detect it."
        )
    return found
