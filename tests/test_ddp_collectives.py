"""Under DDP an epoch costs two collectives beyond the gradients' own all-reduces: the epoch's
values (one all-reduce) and the stop decision (one all-reduce). Nothing per training step: no
barrier before each reduction (Lightning's ``strategy.reduce`` adds one) and no broadcast of
Lightning's SIGTERM flag before every step (the flag cannot be set once nn_handler's SIGTERM
handler replaces Lightning's; see adapters/fit/interrupts.py). One 2-process torchrun job (gloo).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from launch_env import clean_env, job_output, torchrun

pytestmark = pytest.mark.slow

SCRIPTS = Path(__file__).resolve().parent / "ddp_scripts"
sys.path.insert(0, str(SCRIPTS))


@pytest.fixture(scope="module")
def per_epoch(tmp_path_factory):
    out = tmp_path_factory.mktemp("collectives")
    env = clean_env()
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        torchrun(SCRIPTS / "collectives_job.py", out),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, job_output(proc)
    return json.loads((out / "collectives.json").read_text())


@pytest.mark.parametrize("case", ["K=1", "K=4"])
def test_an_epoch_makes_two_all_reduces_and_nothing_per_step(per_epoch, case):
    assert per_epoch[case] == {
        "all_reduce": 2.0,
        "barrier": 0.0,
        "broadcast": 0.0,
        "all_gather": 0.0,
        "all_gather_object": 0.0,
        "reduce": 0.0,
    }
