"""Lifetime of the process group nn_handler creates: destroyed at interpreter exit, ours only.

A default process group left alive until the interpreter is torn down is destroyed by C++ static
destructors after Python has gone, and a rank may then die with SIGABRT ("terminate called without
an active exception"): a finished, correct job reports failure. So the group that
:func:`~nn_handler.adapters.fit.strategy.ensure_process_group` creates is destroyed by an ``atexit``
hook. A group that the user or Lightning created is never touched, nor one the user destroyed (or
destroyed and replaced) already.

``destroy_process_group`` only unregisters the group: the C++ object and its gloo worker threads
live on while anything references it (the DDP reducer of a finished run, often from a reference
cycle). Two things then go wrong at exit, each seen on about 1 run in 10 of the DDP example:

- a worker thread drops the last collective's tensors a moment after the collective returned; if
  their Python objects are already gone it needs the GIL, and during interpreter finalization a
  thread that takes the GIL is ended, which aborts the process (``terminate called``);
- if the collector frees the reducer while that worker waits for the GIL, the group's destructor
  (run with the GIL held) waits for the worker forever.

So the exit hook first releases the GIL for a moment (the workers finish dropping finished work),
then collects cycles while Python is fully alive: the group's destructor joins idle threads.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import gc
import logging
import sys
import time
import weakref
from typing import Any

__all__ = ["TEARDOWN_TIMEOUT_S", "remember_created_group", "destroy_created_group", "created_group"]

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
