"""Fork while a native thread holds the interpreter's thread-registry lock (CPython gh-112275).

Usage: python fork_registry_job.py OUT MODE, MODE one of
  bare   - fork with no guard (nn_handler is not imported);
  import - ``import nn_handler`` first (which installs its fork guard);
  train  - first run NNHandler.train for one epoch, from ``nn_handler`` as users import it.

A native thread (no Python in it) takes the registry lock, as gloo's worker threads do when they
enter Python after a collective; a native timer thread releases it HOLD_S seconds later. The main
thread forks meanwhile. The child only exits 0. OUT gets a JSON report: whether the child ended
within CHILD_WAIT_S, and how long ``os.fork`` took. Linux and a semaphore-based lock only; the
lock's address is found from the runtime's interpreter list (mutex, head, main), checked against
``PyInterpreterState_Main``.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from pathlib import Path

HOLD_S = 0.5
CHILD_WAIT_S = 3.0
SIGEV_THREAD = 2
CLOCK_MONOTONIC = 1


class _Sigevent(ctypes.Structure):
    _fields_ = [
        ("value", ctypes.c_void_p),
        ("signo", ctypes.c_int),
        ("notify", ctypes.c_int),
        ("function", ctypes.c_void_p),
        ("attribute", ctypes.c_void_p),
        ("_pad", ctypes.c_int * 8),
    ]


class _Timespec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("interval", _Timespec), ("value", _Timespec)]


def registry_lock() -> int:
    api = ctypes.pythonapi
    api.PyInterpreterState_Main.restype = ctypes.c_void_p
    main = api.PyInterpreterState_Main()
    words = (ctypes.c_void_p * 32).from_address(
        ctypes.addressof(ctypes.c_char.in_dll(api, "_PyRuntime"))
    )
    for i in range(1, 31):
        if words[i] == main and words[i + 1] == main and words[i - 1]:
            return int(words[i - 1])
    raise LookupError("the runtime's interpreter list was not found")


def hold_then_release(lock: int, seconds: float) -> None:
    """A native thread takes ``lock``; a native timer thread releases it ``seconds`` later."""
    libc = ctypes.CDLL(None, use_errno=True)
    fn = ctypes.c_void_p
    tid = ctypes.c_ulong()
    holder = libc.pthread_create(
        ctypes.byref(tid), None, ctypes.cast(libc.sem_wait, fn), ctypes.c_void_p(lock)
    )
    assert holder == 0, holder
    libc.pthread_join(tid, None)  # sem_wait returned: the lock is taken
    event = _Sigevent(value=lock, notify=SIGEV_THREAD, function=ctypes.cast(libc.sem_post, fn))
    timer = ctypes.c_void_p()
    assert libc.timer_create(CLOCK_MONOTONIC, ctypes.byref(event), ctypes.byref(timer)) == 0
    whole = int(seconds)
    spec = _Itimerspec(value=_Timespec(whole, int((seconds - whole) * 1e9)))
    assert libc.timer_settime(timer, 0, ctypes.byref(spec), None) == 0


def main() -> None:
    out, mode = Path(sys.argv[1]), sys.argv[2]
    if mode == "import":
        import nn_handler  # noqa: F401
    elif mode == "train":
        from common import build  # the DDP jobs' setup, here on one process

        build(use_distributed=False, batch_size=8).train(1, progress_bar=False)
    lock = registry_lock()
    hold_then_release(lock, HOLD_S)
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    fork_s = time.monotonic() - start
    deadline = time.monotonic() + CHILD_WAIT_S
    exited_0 = False
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            exited_0 = os.waitstatus_to_exitcode(status) == 0
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    report = {"child_exited_0": exited_0, "fork_s": fork_s, "hold_s": HOLD_S}
    out.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
