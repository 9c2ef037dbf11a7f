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
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["SIGTERM_EXIT_STATUS", "plain_python_signals"]

#: Exit status of a run ended by SIGTERM (128 + signal number, as shells report it).
SIGTERM_EXIT_STATUS = 128 + int(signal.SIGTERM)

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
