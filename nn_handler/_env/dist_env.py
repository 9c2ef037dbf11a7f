"""Which process of a distributed job this is, read from torchrun's or SLURM's variables.

torchrun is looked at first, as Lightning does, since torchrun can itself run inside a SLURM job.
Every inconsistency that would otherwise surface as a hang at the first collective is reported
here, by name of the variable, before any process group exists.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import overload

from .user_warnings import warn_user

__all__ = ["DistEnv", "detect_distributed"]

# Lightning treats SLURM jobs with these names as interactive and does not use SLURM's variables.
_INTERACTIVE_JOB_NAMES = ("bash", "interactive")


@dataclass(frozen=True)
class DistEnv:
    """The process's place in the job.

    Attributes:
        distributed: more than one process takes part.
        rank, local_rank, world_size: global rank, rank on this node, number of processes.
        source: ``"torchrun"``, ``"slurm"`` or ``None``.
        local_world_size: processes per node (Lightning's ``devices``).
        num_nodes: number of nodes (Lightning's ``num_nodes``).
        node_rank: index of this node.
    """

    distributed: bool = False
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    source: str | None = None
    local_world_size: int = 1
    num_nodes: int = 1
    node_rank: int = 0


@overload
def _int(env: Mapping[str, str], key: str, default: int) -> int: ...
@overload
def _int(env: Mapping[str, str], key: str, default: int | None = None) -> int | None: ...
def _int(env: Mapping[str, str], key: str, default: int | None = None) -> int | None:
    value = env.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as err:
        raise ValueError(f"Environment variable {key}={value!r} is not an integer.") from err


def _leading_int(env: Mapping[str, str], key: str) -> int | None:
    """SLURM's per-node counts may read ``"2(x3)"``; the count is the leading integer."""
    value = env.get(key)
    if value is None or value == "":
        return None
    match = re.match(r"\s*(\d+)", value)
    if match is None:
        raise ValueError(f"Environment variable {key}={value!r} is not a task count.")
    return int(match.group(1))


def _check_range(name: str, value: int, upper: int, upper_name: str) -> None:
    if not 0 <= value < upper:
        raise ValueError(
            f"Inconsistent distributed environment: {name}={value} is outside [0, {upper}) "
            f"given {upper_name}={upper}. Check how the job was launched."
        )


def _from_torchrun(env: Mapping[str, str]) -> DistEnv:
    world = _int(env, "WORLD_SIZE", 1)
    rank = _int(env, "RANK", 0)
    if world < 1:
        raise ValueError(f"WORLD_SIZE={world} must be at least 1.")
    _check_range("RANK", rank, world, "WORLD_SIZE")
    local_world = _int(env, "LOCAL_WORLD_SIZE")
    if local_world is None:
        # Set by hand (no torchrun): assume one node, as Lightning's own environment does.
        local_world = world
    if local_world < 1 or world % local_world:
        raise ValueError(
            f"Inconsistent distributed environment: WORLD_SIZE={world} is not a multiple of "
            f"LOCAL_WORLD_SIZE={local_world} (every node must run the same number of processes)."
        )
    num_nodes = world // local_world
    group_world = _int(env, "GROUP_WORLD_SIZE")
    if group_world is not None and group_world != num_nodes:
        raise ValueError(
            f"Inconsistent distributed environment: GROUP_WORLD_SIZE={group_world} nodes but "
            f"WORLD_SIZE/LOCAL_WORLD_SIZE = {world}/{local_world} = {num_nodes}."
        )
    local_rank = _int(env, "LOCAL_RANK")
    if local_rank is None:
        if num_nodes > 1:
            raise ValueError(
                "LOCAL_RANK is not set in a multi-node job; launch with torchrun, which sets it."
            )
        local_rank = rank
    _check_range("LOCAL_RANK", local_rank, local_world, "LOCAL_WORLD_SIZE")
    node_rank = _int(env, "GROUP_RANK", rank // local_world)
    _check_range("GROUP_RANK", node_rank, num_nodes, "number of nodes")
    return DistEnv(
        world > 1, rank, local_rank, world, "torchrun", local_world, num_nodes, node_rank
    )


def _from_slurm(env: Mapping[str, str]) -> DistEnv:
    ntasks = _int(env, "SLURM_NTASKS", 1)
    rank = _int(env, "SLURM_PROCID", 0)
    if ntasks < 1:
        raise ValueError(f"SLURM_NTASKS={ntasks} must be at least 1.")
    _check_range("SLURM_PROCID", rank, ntasks, "SLURM_NTASKS")
    per_node = _leading_int(env, "SLURM_NTASKS_PER_NODE")
    if per_node is None:
        if ntasks > 1:
            raise ValueError(
                f"SLURM_NTASKS={ntasks} but SLURM_NTASKS_PER_NODE is not set: Lightning needs the "
                f"tasks per node. Submit with `--ntasks-per-node={ntasks}` (and `--nodes=N` for "
                "several nodes) instead of `--ntasks`/`-n`."
            )
        per_node = 1
    nodes = _int(env, "SLURM_NNODES", _int(env, "SLURM_JOB_NUM_NODES"))
    if nodes is None:
        nodes = max(ntasks // per_node, 1)
    if per_node * nodes != ntasks:
        raise ValueError(
            f"Inconsistent SLURM environment: SLURM_NTASKS={ntasks} but SLURM_NNODES={nodes} x "
            f"SLURM_NTASKS_PER_NODE={per_node} = {nodes * per_node}. Request the job with "
            "`--nodes=N --ntasks-per-node=M` only."
        )
    if nodes > 1 and not (env.get("SLURM_NODELIST") or env.get("MASTER_ADDR")):
        raise ValueError(
            f"SLURM_NNODES={nodes} but SLURM_NODELIST is not set, so the main node's address is "
            "unknown. Launch the job with srun, or set MASTER_ADDR to the first node's host name."
        )
    local_rank = _int(env, "SLURM_LOCALID", 0 if nodes == 1 and ntasks == 1 else None)
    if local_rank is None:
        raise ValueError("SLURM_LOCALID is not set; launch each task with srun, which sets it.")
    _check_range("SLURM_LOCALID", local_rank, per_node, "SLURM_NTASKS_PER_NODE")
    node_rank = _int(env, "SLURM_NODEID", rank // per_node)
    _check_range("SLURM_NODEID", node_rank, nodes, "SLURM_NNODES")
    return DistEnv(ntasks > 1, rank, local_rank, ntasks, "slurm", per_node, nodes, node_rank)


def _slurm_task(env: Mapping[str, str]) -> bool:
    """Whether SLURM's variables describe this process as one task of a parallel step."""
    if "SLURM_NTASKS" not in env or "SLURM_PROCID" not in env:
        return False
    if env.get("SLURM_JOB_NAME") in _INTERACTIVE_JOB_NAMES:
        return False
    ntasks = _int(env, "SLURM_NTASKS", 1)
    if ntasks > 1 and "SLURM_STEP_ID" not in env:
        # The batch script itself (no srun step): one process in a multi-task allocation.
        warn_user(
            f"This process runs in a SLURM allocation of {ntasks} tasks but was not started by "
            "srun, so it trains alone. Start the script with `srun python ...` to use all tasks.",
            RuntimeWarning,
        )
        return False
    return True


def detect_distributed(
    use_distributed: bool | None, env: Mapping[str, str] | None = None
) -> DistEnv:
    """Resolve ``use_distributed`` (True / False / None = auto) against the environment.

    Raises:
        TypeError: ``use_distributed`` is not a bool or None.
        ValueError: the launcher's variables contradict each other.
        RuntimeError: ``use_distributed=True`` outside a job of more than one process.
    """
    if use_distributed is not None and not isinstance(use_distributed, bool):
        raise TypeError(f"use_distributed must be True, False or None, got {use_distributed!r}.")
    env = os.environ if env is None else env
    if use_distributed is False:
        return DistEnv()
    found = DistEnv()
    if "WORLD_SIZE" in env and "RANK" in env:
        found = _from_torchrun(env)
    elif _slurm_task(env):
        found = _from_slurm(env)
    if use_distributed is True and not found.distributed:
        hint = ""
        if env.get("SLURM_JOB_NAME") in _INTERACTIVE_JOB_NAMES:
            hint = (
                f" SLURM_JOB_NAME={env['SLURM_JOB_NAME']!r} marks an interactive job, whose "
                "variables Lightning ignores: pass `--job-name=<name>` to srun/sbatch."
            )
        raise RuntimeError(
            "use_distributed=True but this process is not part of a distributed job with more "
            "than one process (no RANK/WORLD_SIZE from torchrun, nor SLURM_PROCID/SLURM_NTASKS "
            "from an srun step). Launch with `torchrun --nproc_per_node=N script.py` or "
            "`srun --ntasks-per-node=N python script.py`, or pass use_distributed=None to detect "
            "it." + hint
        )
    return found
