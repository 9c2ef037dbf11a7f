"""train() under Lightning's launchers leaves the main process's handler as torchrun's rank 0.

One job (tests/ddp_scripts/spawn_job.py: common.py's data, seeds and per-rank batch, with a
scheduler, an EMA, an auto-saver and callbacks with state; train(4) stopped after two epochs by a
rank-0 callback, then train(1)) runs under torchrun and, from a plain ``python`` process, with
``strategy="ddp_spawn"``, ``"ddp_fork"``, ``"ddp_notebook"`` and with ``devices=2`` alone (the
subprocess-script launcher). The fork cases run in that fresh process, never in pytest's.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from launch_env import clean_env, torchrun

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent / "ddp_scripts" / "spawn_job.py"
WORKER_MODES = ["ddp_spawn", "ddp_fork", "ddp_notebook"]
MODES = [*WORKER_MODES, "subprocess"]
# What a train() leaves in the handler; compared with torchrun's rank 0.
STATE_KEYS = [
    "history",
    "global_step",
    "epochs_done",
    "ema",
    "optimizer_state",
    "param_groups",
    "scheduler",
    "weights",
    "after_first",
    "stopper",
    "recorder",
    "counter",
    "saver",
    "epoch_lines",
]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """All launches at once (they mostly wait on process start-up): reports and outputs."""
    out = tmp_path_factory.mktemp("launchers")
    env = clean_env()
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    commands = {
        "torchrun": torchrun(SCRIPT, out, "torchrun"),
        "workers": [sys.executable, str(SCRIPT), str(out), ",".join(WORKER_MODES)],
        # Lightning runs this script again as rank 1: alone in its process.
        "subprocess": [sys.executable, str(SCRIPT), str(out), "subprocess"],
        # A failing worker: torch and Lightning print its traceback (kept out of the others).
        "crash": [sys.executable, str(SCRIPT), str(out), "crash"],
    }
    procs = {
        name: subprocess.Popen(
            cmd, env=env, cwd=out, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, cmd in commands.items()
    }
    outputs = {}
    try:
        for name, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=400)
            assert proc.returncode == 0, f"{name}:\n{stdout[-3000:]}\n{stderr[-3000:]}"
            outputs[name] = stdout + stderr
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    names = ["torchrun", *MODES, "crash"]
    reports = {mode: json.loads((out / f"{mode}.json").read_text()) for mode in names}
    return reports, outputs


def close(got, want, path="") -> list[str]:
    """Where ``got`` and ``want`` differ (floats within 1e-6 relative)."""
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return [f"{path}: keys {sorted(got)} != {sorted(want)}"]
        return [d for k in want for d in close(got[k], want[k], f"{path}.{k}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: {got!r} != {want!r}"]
        return [d for i, (g, w) in enumerate(zip(got, want)) for d in close(g, w, f"{path}[{i}]")]
    if isinstance(want, float) and isinstance(got, (int, float)):
        return [] if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-8) else [f"{path}: {got}"]
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]


def _normal(line: str) -> str:
    """A printed or logged line without what differs between runs (times, directories)."""
    line = re.sub(r"\[\d+\.\d+s\]", "[t]", line)
    return re.sub(r"\S*/(auto_\d+\.pth)", r"\1", line)


def printed(output: str, mode: str) -> list[str]:
    """The epoch lines ProgressMonitor printed in ``mode``'s section of a job's output."""
    lines, inside = [], False
    for line in output.splitlines():
        if line.startswith("== "):
            inside = line == f"== {mode}"
        elif inside and re.match(r"E\d+/\d+ ", line):
            lines.append(_normal(line))
    return lines


@pytest.mark.parametrize("mode", MODES)
def test_main_process_holds_what_torchruns_rank_zero_holds(jobs, mode):
    reports, _ = jobs
    got, want = reports[mode], reports["torchrun"]
    for key in STATE_KEYS:
        assert close(got[key], want[key]) == [], key


def test_the_comparison_has_substance(jobs):
    want = jobs[0]["torchrun"]
    # SGD with momentum: one buffer per parameter; EMA (decay 0.9) lags the weights.
    assert len(want["optimizer_state"]) == 4
    assert all(s["momentum_buffer"] for s in want["optimizer_state"].values())
    ema_weight = want["ema"]["module.body.0.weight"]
    assert close(ema_weight, want["weights"]["body.0.weight"]) != []
    assert want["ema"]["n_averaged"] == [12.0]
    assert want["scheduler"]["last_epoch"] == 3
    assert want["param_groups"][0]["lr"] == pytest.approx(0.2 * 0.8**3)
    # Two epochs, then the rank-0 stopper; a second train() of one epoch continues.
    assert len(want["history"]["train_losses"]) == 3
    assert want["history"]["train_losses"][2] < want["history"]["train_losses"][0]


@pytest.mark.parametrize("mode", MODES)
def test_second_train_continues_epochs_and_steps(jobs, mode):
    report = jobs[0][mode]
    assert report["after_first"] == {"epochs_done": 2, "step": 8}  # 4 steps an epoch
    assert (report["epochs_done"], report["global_step"]) == (3, 12)
    assert report["recorder"]["epochs"] == [1, 2, 3]
    assert report["counter"] == {"batches": 12}
    assert report["stopper"] == {"stops": 1}


@pytest.mark.parametrize("mode", MODES)
def test_save_then_load_round_trips(jobs, mode):
    report = jobs[0][mode]
    loaded = report["loaded"]
    for key in ["history", "global_step", "ema", "optimizer_state", "scheduler", "weights"]:
        assert close(loaded[key], report[key]) == [], key


@pytest.mark.parametrize("mode", MODES)
def test_callbacks_saw_the_workers_place_and_rank_zero_wrote(jobs, mode):
    report = jobs[0][mode]
    assert report["recorder"]["places"] == [[0, 2, True]] * 3
    assert report["epoch_lines"] == [f"rank 0 of 2: epoch {e}" for e in (1, 2, 3)]
    # The auto-saver wrote on rank 0 and replaced its previous file across the train() calls.
    assert report["saver"] == {
        "last_saved": "auto_03.pth",
        "written": ["auto_03.pth"],
        "files": ["auto_03.pth"],
    }


@pytest.mark.parametrize("mode", MODES)
def test_main_process_place_after_training(jobs, mode):
    # Spawned or forked workers are gone: the main process trains alone again. The
    # subprocess-script launcher made the main process rank 0 of a job that goes on.
    assert jobs[0][mode]["place"] == ([0, 2, True] if mode == "subprocess" else [0, 1, False])


@pytest.mark.parametrize("mode", MODES)
def test_prints_and_logs_as_under_torchrun(jobs, mode):
    reports, outputs = jobs
    job = "workers" if mode in WORKER_MODES else mode
    want_printed = printed(outputs["torchrun"], "torchrun")
    assert len(want_printed) == 3
    assert printed(outputs[job], mode) == want_printed
    want_log = [_normal(line) for line in reports["torchrun"]["log_lines"]]
    assert [_normal(line) for line in reports[mode]["log_lines"]] == want_log
    assert sum("Auto-saved checkpoint auto_0" in line for line in want_log) == 3


def test_no_lightning_start_up_noise(jobs):
    for name, output in jobs[1].items():
        if name == "crash":
            continue
        for noise in ("Initializing distributed", "All distributed processes registered"):
            assert noise not in output, name
        assert "overridden after learning rate scheduler" not in output, name
        assert "Traceback" not in output, name


def test_a_failing_worker_raises_and_leaves_the_handler_as_before(jobs):
    report = jobs[0]["crash"]
    assert report["raised"].startswith("ProcessRaisedException")
    assert "rank 1 fails on purpose" in report["raised"]
    assert close(report["after"], report["before"]) == []
    assert report["before"]["global_step"] == 4 and len(report["before"]["ema"]) > 0
