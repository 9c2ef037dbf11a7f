"""Real torchrun jobs end with exit status 0, and only the process group nn_handler created is
destroyed at exit (see nn_handler/_env/process_group.py). 20 runs in a row:
``python tests/reliability/ddp_exit_loop.py``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from launch_env import clean_env, job_output, torchrun

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS / "reliability"))

import ddp_exit_loop  # noqa: E402


def test_the_ddp_example_exits_0_three_times_in_a_row():
    results = [ddp_exit_loop.run_once(epochs=2, timeout_s=300) for _ in range(3)]
    assert [r["code"] for r in results] == [0, 0, 0], [r["tail"] for r in results]
    assert not any(r["terminate_called"] or r["signals"] for r in results)


def owner_job(out: Path, mode: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    env = clean_env()
    env["OMP_NUM_THREADS"] = "1"
    command = torchrun(TESTS / "ddp_scripts" / "exit_owner.py", out, mode)
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    return proc, reports


@pytest.mark.parametrize(
    "mode, alive_at_exit",
    [("ours", False), ("user", True), ("destroyed", False)],
)
def test_the_group_is_destroyed_at_exit_only_when_nn_handler_created_it(
    tmp_path, mode, alive_at_exit
):
    proc, reports = owner_job(tmp_path, mode)
    assert proc.returncode == 0, job_output(proc)
    assert [r["initialized_at_exit"] for r in reports] == [alive_at_exit] * 2
    # A group's worker threads alive into interpreter finalization can abort a finished rank.
    assert [bool(r["gloo_threads_at_exit"]) for r in reports] == [alive_at_exit] * 2, reports
    assert "Traceback" not in proc.stderr  # e.g. nothing raised by a second destroy


def test_a_teardown_that_hangs_ends_the_process_instead(tmp_path):
    """A backend whose shutdown waits forever (NCCL with a dead peer) must not hang the job."""
    script = tmp_path / "hang.py"
    script.write_text(
        textwrap.dedent(
            """
            import socket, time
            import torch, torch.distributed as dist
            from nn_handler._env.dist_env import DistEnv
            from nn_handler._env import process_group
            from nn_handler._env.process_group import ensure_process_group

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            import os
            os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
            ensure_process_group(DistEnv(True, 0, 0, 1, "torchrun", 1, 1, 0), torch.device("cpu"))
            assert process_group.created_group() is not None
            dist.destroy_process_group = lambda *a, **k: time.sleep(3600)
            process_group.TEARDOWN_TIMEOUT_S = 2
            print("exiting", flush=True)
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, str(script)], env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.stdout.strip() == "exiting"
    assert proc.returncode == 1  # faulthandler's exit, not a hang (timeout above) nor 0
    assert "Timeout" in proc.stderr and "destroy_created_group" in proc.stderr
