"""Launching ddp_fault.py under torchrun and judging the outcome (default and soak runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from launch_env import clean_env, torchrun

from nn_handler import NNHandler

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ddp_fault  # noqa: E402

#: The collective timeout the jobs run with ($NN_HANDLER_DDP_TIMEOUT, see docs/distributed.md).
COLLECTIVE_TIMEOUT_S = 30
#: A dead rank must end the job well before the collective timeout: torchrun sees the exit.
EXIT_BOUND_S = 20


def launch(out: Path, mode: str, timeout_s: float) -> subprocess.Popen:
    """Start the 2-process job (rank 1 fails by ``mode``); its output goes to OUT/log.txt."""
    out.mkdir(parents=True, exist_ok=True)
    env = clean_env()
    env["NN_HANDLER_DDP_TIMEOUT"] = str(timeout_s)
    command = torchrun(HERE / "ddp_fault.py", out, mode)
    with open(out / "log.txt", "w") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, out: Path, limit: float) -> dict:
    """Wait for the job (killed after ``limit`` s): exit code, seconds after the fault, log."""
    try:
        code = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    ended = time.time()
    fault_file = out / "fault.json"
    fault = json.loads(fault_file.read_text()) if fault_file.exists() else {}
    return {
        "code": code,
        "seconds_after_fault": ended - fault["time"] if fault else None,
        "log": (out / "log.txt").read_text(),
        "out": out,
    }


def run_jobs(root: Path, modes: list[str], timeout_s: float, limit: float) -> dict[str, dict]:
    """Launch one job per mode at once and wait for all of them."""
    procs = {m: launch(root / m, m, timeout_s) for m in modes}
    return {m: finish(p, root / m, limit) for m, p in procs.items()}


def check_job(job: dict, bound_s: float) -> None:
    """Non-zero exit soon after the fault, nobody finished, the last auto-save resumes."""
    assert job["code"] not in (0, None), job["log"][-4000:]
    assert job["seconds_after_fault"] is not None, job["log"][-4000:]
    assert job["seconds_after_fault"] < bound_s, job
    assert not list(job["out"].glob("finished_rank*"))
    ckpt = job["out"] / "ckpt"
    expected = f"model_epoch{ddp_fault.FAULT_EPOCH:02d}.pth"
    assert sorted(os.listdir(ckpt)) == [expected]  # the last complete epoch, nothing partial
    resumed = NNHandler.load(str(ckpt), loss_fn=torch.nn.functional.cross_entropy)
    assert len(resumed.train_losses) == ddp_fault.FAULT_EPOCH
    assert resumed.run_state.global_step == ddp_fault.FAULT_EPOCH * ddp_fault.STEPS
    resumed.set_train_loader(ddp_fault.dataset(), batch_size=2 * ddp_fault.PER_RANK_BATCH)
    resumed.auto_save(None)
    resumed.train(ddp_fault.EPOCHS - ddp_fault.FAULT_EPOCH, progress_bar=False)
    assert len(resumed.train_losses) == ddp_fault.EPOCHS
    assert all(torch.isfinite(torch.tensor(resumed.train_losses)))
