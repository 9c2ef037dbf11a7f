"""The 2-process DDP job under a real single-node SLURM started by the test session itself.

The session fixture starts munged, slurmctld and slurmd with tests/slurm/up.sh (which installs
Debian's slurm-wlm when absent) and stops them with tests/slurm/down.sh at the end. The tests skip,
saying why, where that is impossible (not root, no SLURM and no apt-get, daemons not starting).
Set NN_HANDLER_SKIP_SLURM=1 to skip them on purpose.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from launch_env import clean_env, job_output

HERE = Path(__file__).resolve().parent
JOB = HERE / "ddp_scripts" / "ddp_job.py"
LAUNCHER_JOB = HERE / "ddp_scripts" / "launcher_job.py"
UP, DOWN = HERE / "slurm" / "up.sh", HERE / "slurm" / "down.sh"

pytestmark = pytest.mark.slow


def _node_ready() -> bool:
    if shutil.which("sinfo") is None:
        return False
    try:
        state = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(s in ("idle", "mixed", "allocated") for s in state)


def _node_cpus() -> int:
    out = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True, timeout=10)
    return max((int(c) for c in out.stdout.split() if c.isdigit()), default=0)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running single-node SLURM; stopped at the end if this session started it."""
    if os.environ.get("NN_HANDLER_SKIP_SLURM"):
        pytest.skip("NN_HANDLER_SKIP_SLURM is set")
    if _node_ready():
        if _node_cpus() < 2:  # the 2-task jobs would wait forever for a second CPU
            pytest.skip("the running SLURM node has fewer than 2 CPUs; the jobs run 2 tasks")
        yield "already running"
        return
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("starting munged/slurmctld/slurmd needs root on Linux")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and apt-get is not available to install it")
    try:
        up = subprocess.run(["bash", str(UP)], capture_output=True, text=True, timeout=400)
    except subprocess.TimeoutExpired:
        up = None
    if up is None or up.returncode != 0 or not _node_ready():
        subprocess.run(["bash", str(DOWN)], capture_output=True, timeout=60)
        tail = "timed out" if up is None else (up.stdout + up.stderr)[-800:]
        pytest.skip(f"SLURM could not be started: {tail}")
    try:
        yield "started"
    finally:
        subprocess.run(["bash", str(DOWN)], capture_output=True, timeout=60)


def _env() -> dict[str, str]:
    env = clean_env(drop_slurm=True)
    env["NN_HANDLER_DDP_TIMEOUT"] = "120"
    return env


def _reports(out: Path) -> list[dict]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def _check_job(reports: list[dict]) -> None:
    for r, rep in enumerate(reports):
        assert (rep["rank"], rep["local_rank"], rep["world_size"]) == (r, r, 2)
        assert rep["source"] == "slurm" and rep["pg_ready_at_construction"] is True
        probe = rep["probe"]
        # what Lightning itself used: its SLURMEnvironment reading the node list as
        # nn_handler_run does
        assert probe["cluster"] == "_SLURMEnvironment"
        assert (probe["strategy"], probe["world"], probe["backend"]) == ("DDPStrategy", 2, "gloo")
        assert probe["sampler_epochs"] == [0, 1, 2]
        assert len(rep["history"]["train_losses"]) == 3  # the rank-0 stop held on both ranks
    assert reports[0]["history"] == reports[1]["history"]
    assert reports[0]["weights"] == reports[1]["weights"]


def test_srun_two_tasks(slurm_cluster, tmp_path):
    cmd = [
        "srun",
        "--nodes=1",
        "--ntasks-per-node=2",
        "--job-name=nnh-ddp-srun",
        "--kill-on-bad-exit=1",
        f"--chdir={tmp_path}",
        sys.executable,
        str(JOB),
        str(tmp_path / "out"),
        "train",
    ]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, job_output(proc)
    _check_job(_reports(tmp_path / "out"))


def test_sbatch_wait(slurm_cluster, tmp_path):
    out = tmp_path / "out"
    script = tmp_path / "job.sh"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH --job-name=nnh-ddp-sbatch\n"
        "#SBATCH --nodes=1\n"
        "#SBATCH --ntasks-per-node=2\n"
        f"#SBATCH --output={tmp_path}/slurm-%j.out\n"
        f"srun --kill-on-bad-exit=1 {sys.executable} {JOB} {out} train\n"
    )
    proc = subprocess.run(
        ["sbatch", "--wait", f"--chdir={tmp_path}", str(script)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    logs = "".join(p.read_text() for p in tmp_path.glob("slurm-*.out"))
    assert proc.returncode == 0, (proc.stdout + proc.stderr + logs)[-3000:]
    _check_job(_reports(out))


def test_srun_nn_handler_run(slurm_cluster, tmp_path):
    """The original's job scripts: `srun nn_handler_run train.py`, one launcher task per node
    that starts the node's processes itself (2 CPU processes here)."""
    from test_nn_handler_run import launcher

    cmd = [
        "srun",
        "--nodes=1",
        "--ntasks-per-node=1",
        "--job-name=nnh-run",
        "--kill-on-bad-exit=1",
        f"--chdir={tmp_path}",
        *launcher(),
        "--nproc-per-node",
        "2",
        str(LAUNCHER_JOB),
        str(tmp_path / "out"),
    ]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, job_output(proc)
    # Nodes, node rank and rendezvous came from SLURM: c10d on the job's first node.
    assert (
        "1 node(s) [SLURM_STEP_NUM_NODES]" in proc.stderr
        and "c10d rendezvous at localhost:" in proc.stderr
    )
    reports = _reports(tmp_path / "out")
    job_id = reports[0]["env"]["SLURM_JOB_ID"]
    for r, rep in enumerate(reports):
        assert (rep["rank"], rep["local_rank"], rep["world_size"]) == (r, r, 2)
        env, probe = rep["env"], rep["probe"]
        # The processes are torchrun's (rendezvous id = the SLURM job), not SLURM tasks.
        assert job_id and env["SLURM_JOB_ID"] == job_id and env["TORCHELASTIC_RUN_ID"] == job_id
        assert env["SLURM_PROCID"] == "0"  # the one launcher task's variable, inherited
        assert probe["cluster"] == "TorchElasticEnvironment" and probe["trainer_world"] == 2
        assert probe["trainer_num_nodes"] == 1 and probe["global_rank"] == r
    assert reports[0]["train_losses"] == reports[1]["train_losses"]
