"""SIGTERM to one rank of a 2-process torchrun job ends the whole job within seconds (issue 22).

Rank 1 is signalled while it waits at the AutoSaver's barrier for rank 0 (which is 5 s late).
Before, Lightning's SIGTERM handler broadcast from inside the handler, a collective rank 0 never
joined, and the job hung until the 30-minute collective timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from launch_env import clean_env, job_output, torchrun

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent / "ddp_scripts" / "sigterm_job.py"


def _kill_leftovers(proc: subprocess.Popen, out: Path) -> None:
    """A job that hung: kill torchrun and each worker (they run in sessions of their own). A
    torchrun that ended has reaped its workers: nothing is killed then (their pids are stale)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGKILL)
    for pid_file in out.glob("rank*.pid"):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=30)


def test_sigterm_to_one_rank_ends_the_job_nonzero_within_a_minute_naming_the_rank(tmp_path):
    env = clean_env()
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.Popen(
        torchrun(SCRIPT, tmp_path),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "rank1.ready").exists():
            assert proc.poll() is None, "the job ended before training ran"
            assert time.monotonic() < deadline, "training never reached its second epoch end"
            time.sleep(0.1)
        os.kill(int((tmp_path / "rank1.pid").read_text()), signal.SIGTERM)
        signalled = time.monotonic()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - signalled
    finally:
        _kill_leftovers(proc, tmp_path)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert proc.returncode != 0, job_output(done)
    assert took < 60
    assert "[rank 1] SIGTERM received" in err, job_output(done)
    # torchrun's summary names the rank and its status.
    assert "rank      : 1 (local_rank: 1)" in err, job_output(done)
