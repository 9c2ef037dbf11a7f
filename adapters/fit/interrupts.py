"""Signals during ``Trainer.fit`` reach the caller as they would without Lightning.

Lightning turns Ctrl-C (SIGINT) into ``sys.exit(1)`` after its teardown, and SIGTERM into
``SIGTERMException``, a ``SystemExit`` with no code (exit status 0). NNHandler's users expect what
plain Python gives them:

- SIGINT: the original ``KeyboardInterrupt`` is raised from ``train()`` once Lightning has torn
  down, so ``except KeyboardInterrupt: handler.save(...)`` works; the SIGINT handler is restored.
- SIGTERM: ``train()`` raises ``SystemExit(143)`` (128 + 15, the status a shell reports for a
  process the default handler ended) after the same teardown; ``finally`` blocks and ``atexit``
  hooks still run. A SIGTERM that arrives so late that Lightning lets the run finish ends it the
  same way: a killed job never looks successful.
- SIGTERM to one rank of a multi-process job (:class:`LeaveAloneOnSigterm`): that rank leaves at
  once with status 143 and waits for no peer. Lightning's own handler broadcasts from inside the
  signal handler, a collective the other ranks never join while they wait at a barrier, so the
  job hung until the collective timeout (30 minutes). The peers notice the missing rank at their
  next collective and fail, and torchrun, seeing a worker fail, stops the job and names the rank.
  With that handler in place Lightning's SIGTERM flag is never set, so the broadcast of the flag
  Lightning makes before every training step (a collective and a host sync per step) is skipped.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import lightning as L

__all__ = [
    "LEAVE_TIMEOUT_S",
    "SIGTERM_EXIT_STATUS",
    "LeaveAloneOnSigterm",
    "plain_python_signals",
]

#: Exit status of a run ended by SIGTERM (128 + signal number, as shells report it).
SIGTERM_EXIT_STATUS = 128 + int(signal.SIGTERM)

#: Seconds a rank of a multi-process job may spend tearing down after SIGTERM before it is ended
#: with status 1 (a teardown step that waits on a peer that is gone must not hang the job).
LEAVE_TIMEOUT_S = 20.0

_log = logging.getLogger("nn_handler")


@contextlib.contextmanager
def plain_python_signals(trainer: Any) -> Iterator[None]:
    """Wrap ``trainer.fit(...)``: Ctrl-C leaves as ``KeyboardInterrupt``, SIGTERM as exit 143."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    main = threading.current_thread() is threading.main_thread()
    sigint = signal.getsignal(signal.SIGINT) if main else None
    try:
        yield
    except SIGTERMException as err:
        raise _terminated() from err
    except SystemExit as err:
        interrupt = err.__context__
        # Lightning's handler: `except KeyboardInterrupt: ... teardown ...; sys.exit(1)`.
        if err.code == 1 and isinstance(interrupt, KeyboardInterrupt):
            raise interrupt.with_traceback(interrupt.__traceback__) from None
        raise
    finally:
        # Lightning ignores SIGINT while it tears down after a Ctrl-C.
        if sigint is not None and signal.getsignal(signal.SIGINT) is not sigint:
            signal.signal(signal.SIGINT, sigint)
    if getattr(trainer, "received_sigterm", False):
        raise _terminated()


def _terminated() -> SystemExit:
    _log.warning("Training stopped by SIGTERM; exiting with status %d.", SIGTERM_EXIT_STATUS)
    return SystemExit(SIGTERM_EXIT_STATUS)


class LeaveAloneOnSigterm(L.Callback):
    """A Lightning callback for multi-process runs: SIGTERM ends this rank now, status 143.

    It replaces Lightning's SIGTERM handler once training starts (Lightning installs its own just
    before; its teardown restores the previous one). The handler raises ``SystemExit(143)`` in the
    main thread, so ``finally`` blocks and ``atexit`` hooks run, and arms a watchdog
    (:mod:`faulthandler`'s C thread, which fires even while the main thread waits inside a
    collective) that ends the process with status 1 if leaving takes over
    :data:`LEAVE_TIMEOUT_S` seconds. Lightning's per-step broadcast of its SIGTERM flag, which
    only that flag's handler could set, is then skipped.

    Args:
        rank: this process's global rank, named in the message.
    """

    def __init__(self, rank: int):
        self.rank = int(rank)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _leave_now(self.rank))
            loop = trainer.fit_loop.epoch_loop
            if hasattr(type(loop), "_broadcast_sigterm_tensor"):  # Lightning >= 2.6
                loop._broadcast_sigterm_tensor = _flag_never_set


def _flag_never_set() -> None:
    """Lightning's step-start check of ``trainer.received_sigterm``, which only Lightning's own
    SIGTERM handler sets: replaced by :func:`_leave_now`, nothing is left to broadcast."""


def _leave_now(rank: int) -> Any:
    def handler(signum: int, frame: Any) -> None:
        message = (
            f"[rank {rank}] SIGTERM received: this rank leaves the job now (status "
            f"{SIGTERM_EXIT_STATUS}) without waiting for the other ranks."
        )
        with contextlib.suppress(Exception):
            print(message, file=sys.stderr, flush=True)
        _log.warning(message)
        faulthandler.dump_traceback_later(LEAVE_TIMEOUT_S, exit=True)
        raise SystemExit(SIGTERM_EXIT_STATUS)

    return handler
