"""A fork while another thread holds the interpreter's thread-registry lock (CPython gh-112275):
the child hangs without nn_handler's fork guard; once nn_handler is imported the fork waits for
the lock and the child runs. The lock is the real one, taken by a native thread as gloo's worker
threads take it (see nn_handler/_env/fork_guard.py and tests/ddp_scripts/fork_registry_job.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from launch_env import clean_env

from nn_handler._env.fork_guard import AFFECTED

TESTS = Path(__file__).resolve().parent
JOB = TESTS / "ddp_scripts" / "fork_registry_job.py"
sys.path.insert(0, str(JOB.parent))

import fork_registry_job  # noqa: E402


def _lock_found() -> bool:
    try:
        fork_registry_job.registry_lock()
    except LookupError:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not (
        sys.platform.startswith("linux") and sys.thread_info.lock == "semaphore" and _lock_found()
    ),
    reason="needs Linux, semaphore locks and CPython's runtime layout",
)


def run_job(tmp_path: Path, mode: str) -> dict:
    out = tmp_path / f"{mode}.json"
    proc = subprocess.run(
        [sys.executable, str(JOB), str(out), mode],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.skipif(not AFFECTED, reason="this interpreter re-creates the lock before taking it")
def test_without_the_guard_a_child_forked_while_the_lock_is_held_hangs(tmp_path):
    report = run_job(tmp_path, "bare")
    assert report["fork_s"] < report["hold_s"] / 2  # the fork did not wait ...
    assert report["child_exited_0"] is False  # ... and its child never got to run


@pytest.mark.parametrize("mode", ["import", "train"])
def test_with_nn_handler_imported_a_fork_waits_for_the_lock(tmp_path, mode):
    report = run_job(tmp_path, mode)
    assert report["child_exited_0"] is True
    if AFFECTED:  # the guard waited until the native thread released the lock
        assert report["fork_s"] >= report["hold_s"] * 0.9
