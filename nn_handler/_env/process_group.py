"""The process group nn_handler creates: made as Lightning's ``DDPStrategy`` would, destroyed at
interpreter exit, ours only.

:func:`ensure_process_group` creates the default group at handler construction with Lightning's own
cluster environment, backend and ``_init_dist_connection`` (Lightning's fabric is imported then,
only in a distributed process), so that the Trainer finds the group initialised and reuses it.

A default process group left alive until the interpreter is torn down is destroyed by C++ static
destructors after Python has gone, and a rank may then die with SIGABRT ("terminate called without
an active exception"): a finished, correct job reports failure. So the group that
:func:`ensure_process_group` creates is destroyed by an ``atexit``
hook. A group that the user or Lightning created is never touched, nor one the user destroyed (or
destroyed and replaced) already.

``destroy_process_group`` only unregisters the group: the C++ object and its gloo worker threads
live on while anything references it (the DDP reducer of a finished run, often from a reference
cycle). Two things then go wrong at exit, each seen on about 1 run in 10 of the DDP example:

- a worker thread drops the last collective's tensors a moment after the collective returned and
  needs the GIL for it (their Python objects lose a reference), and during interpreter
  finalization a thread that takes the GIL is ended, which aborts the process (``terminate
  called``);
- if the collector frees the reducer while that worker waits for the GIL, the group's destructor
  (run with the GIL held) waits for the worker forever.

So the exit hook first releases the GIL for a moment (the workers finish dropping finished work),
then collects cycles while Python is fully alive: the group's destructor joins idle threads.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import functools
import gc
import logging
import os
import sys
import time
import weakref
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import torch

from .dist_env import DistEnv
from .slurm_hosts import first_host

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "TEARDOWN_TIMEOUT_S",
    "TIMEOUT_ENV",
    "cluster_environment",
    "collective_timeout",
    "created_group",
    "destroy_created_group",
    "ensure_process_group",
    "process_group_backend",
    "remember_created_group",
]

#: Seconds a collective may wait for the other ranks before the job fails (Lightning's default).
DEFAULT_TIMEOUT_S = 1800
#: Environment variable overriding :data:`DEFAULT_TIMEOUT_S` (seconds).
TIMEOUT_ENV = "NN_HANDLER_DDP_TIMEOUT"

_PACKAGES = ("fabric", "pytorch")

#: Seconds the exit-time destruction may take before the process gives up and exits with status 1
#: (a backend whose shutdown waits for a peer that died, e.g. NCCL, must not hang the job).
TEARDOWN_TIMEOUT_S = 60.0

#: Seconds the exit hook releases the GIL so the backend's worker threads finish dropping finished
#: collectives (they need the GIL for tensors whose Python objects are gone).
WORKER_DRAIN_S = 0.1

_log = logging.getLogger("nn_handler")
# A weak reference: holding the group strongly would keep a group the user destroyed alive until
# interpreter teardown, the very situation this module exists to avoid.
_created: weakref.ReferenceType | None = None
_hook_registered = False


def remember_created_group() -> None:
    """Record the current default process group as ours; it is destroyed at interpreter exit."""
    global _created, _hook_registered
    from torch.distributed import distributed_c10d

    _created = weakref.ref(distributed_c10d._get_default_group())
    if not _hook_registered:
        atexit.register(_at_exit)
        _hook_registered = True


def created_group() -> Any:
    """The default process group if nn_handler created it and it is still the live default, else
    ``None``."""
    import torch.distributed as tdist

    group = _created() if _created is not None else None
    if group is None or not (tdist.is_available() and tdist.is_initialized()):
        return None
    from torch.distributed import distributed_c10d

    return group if distributed_c10d._get_default_group() is group else None


def _at_exit() -> None:
    """Destroy our group, let its workers finish, then free the cycles holding it (see above)."""
    destroy_created_group()
    faulthandler.dump_traceback_later(TEARDOWN_TIMEOUT_S, exit=True)
    try:
        time.sleep(WORKER_DRAIN_S)  # releases the GIL
        gc.collect()
    finally:
        faulthandler.cancel_dump_traceback_later()


def destroy_created_group() -> bool:
    """Destroy the default process group if nn_handler created it and it is still alive.

    Safe to call any number of times; never raises. If the destruction takes longer than
    :data:`TEARDOWN_TIMEOUT_S` (a backend waiting for a dead peer) the
    process exits with status 1 instead of hanging: the watchdog is :mod:`faulthandler`'s C
    thread, which fires even while the destruction holds the GIL, and prints every thread's stack.

    Returns:
        True if a group was destroyed.
    """
    global _created
    group = created_group()
    _created = None
    if group is None:
        return False
    import torch.distributed as tdist

    with contextlib.suppress(Exception):
        sys.stderr.flush()
    faulthandler.dump_traceback_later(TEARDOWN_TIMEOUT_S, exit=True)
    try:
        tdist.destroy_process_group()
    except Exception as err:  # noqa: BLE001 - at exit a failed teardown must not mask the result
        _log.debug("Destroying the process group failed: %s", err)
        return False
    finally:
        faulthandler.cancel_dump_traceback_later()
    return True


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

    A group created here is destroyed at interpreter exit (:func:`destroy_created_group`); an
    existing one is reused and left to whoever created it.

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
