"""``nn_handler_run``, the original's torchrun launcher with SLURM defaults: the arguments it
builds, and real launches (one node with --standalone; two nodes on one machine). The srun launch
is in test_slurm.py, beside the SLURM cluster it needs."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from launch_env import clean_env, job_output

from nn_handler.launch import first_host, gpus_per_node, torchrun_arguments

JOB = Path(__file__).resolve().parent / "ddp_scripts" / "launcher_job.py"


def launcher() -> list[str]:
    """The installed console script (the module when the package is not installed)."""
    script = Path(sys.executable).with_name("nn_handler_run")
    if script.exists():
        return [str(script)]
    found = shutil.which("nn_handler_run")
    return [found] if found else [sys.executable, "-m", "nn_handler.launch"]


def args(argv: list[str], env: dict[str, str] | None = None, cuda: int = 0) -> list[str]:
    return torchrun_arguments(argv, env or {}, cuda_count=cuda)[0]


SLURM_TWO_NODES = {
    "SLURM_JOB_ID": "4242",
    "SLURM_STEP_ID": "0",
    "SLURM_NNODES": "2",
    "SLURM_STEP_NUM_TASKS": "2",
    "SLURM_NODEID": "1",
    "SLURM_GPUS_PER_NODE": "a100:4",
    "SLURM_JOB_NODELIST": "gpu[07-08]",
}


# ------------------------------------------------------------------- the arguments
def test_console_scripts_are_declared():
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts["nn_handler_run"] == "nn_handler.launch:main"
    # The Lightning CLI, through the entry point that answers --help without importing Lightning
    # (after changing pyproject.toml: pip install -e . rewrites the installed metadata).
    assert scripts["nn-handler"] == "nn_handler.adapters.config.entry:main"


def test_slurm_defaults_for_a_multi_node_job():
    assert args(["train.py", "--lr", "0.1"], SLURM_TWO_NODES) == [
        "--nnodes=2",
        "--nproc-per-node=4",
        "--node-rank=1",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=gpu07:{13000 + 4242 % 20000}",
        "--rdzv-id=4242",
        "train.py",
        "--lr",
        "0.1",
    ]
    summary = torchrun_arguments(["train.py"], SLURM_TWO_NODES, cuda_count=0)[1]
    assert "2 node(s) [SLURM_NNODES] x 4 process(es) [SLURM_GPUS_PER_NODE]" in summary


def test_the_command_line_wins_over_slurm():
    env = {**SLURM_TWO_NODES, "MASTER_ADDR": "head", "MASTER_PORT": "29400"}
    out = args(
        ["--nnodes", "2", "--nproc_per_node", "3", "--node-rank", "0", "--rdzv-id", "r", "t.py"],
        env,
    )
    assert out[:3] == ["--nnodes=2", "--nproc-per-node=3", "--node-rank=0"]
    assert "--rdzv-endpoint=head:29400" in out and "--rdzv-id=r" in out
    out = args(["--rdzv-endpoint", "10.0.0.1:5000", "t.py"], env)
    assert "--rdzv-endpoint=10.0.0.1:5000" in out


def test_process_count_fallbacks():
    assert "--nproc-per-node=2" in args(["t.py"], {"SLURM_GPUS_ON_NODE": "2"})
    assert "--nproc-per-node=3" in args(["t.py"], {}, cuda=3)
    out, summary = torchrun_arguments(["t.py"], {}, cuda_count=0)
    assert "--nproc-per-node=1" in out and "one CPU process" in summary


def test_one_node_without_slurm_is_standalone():
    assert args(["t.py"]) == [
        "--nnodes=1",
        "--nproc-per-node=1",
        "--node-rank=0",
        "--standalone",
        "t.py",
    ]
    assert "--standalone" in args(["--standalone", "--nproc-per-node", "2", "t.py"])


def test_the_originals_torchrun_options_reach_torchrun():
    """A SLURM script's `nn_handler_run --rdzv-backend c10d ...` (the original's options), read
    back by torchrun's own parser."""
    from torch.distributed.run import get_args_parser

    argv = [
        "--rdzv-backend", "c10d", "--max-restarts", "2", "--monitor-interval", "0.5",
        "--tee", "3", "--torchrun-extra=--log-dir=logs", "train.py", "--", "--lr", "1",
    ]  # fmt: skip
    out = args(argv, SLURM_TWO_NODES)
    parsed = get_args_parser().parse_args(out)
    assert (parsed.rdzv_backend, parsed.rdzv_endpoint) == ("c10d", f"gpu07:{13000 + 4242}")
    assert (parsed.max_restarts, parsed.monitor_interval, parsed.tee) == (2, 0.5, "3")
    assert parsed.log_dir == "logs" and parsed.node_rank == 1 and parsed.nnodes == "2"
    assert (parsed.training_script, parsed.training_script_args) == ("train.py", ["--lr", "1"])
    out = args(["--rdzv-backend", "static", "--rdzv-endpoint", "h:1", "t.py"])
    assert get_args_parser().parse_args(out).rdzv_backend == "static"
    assert not any(a.startswith(("--max-restarts", "--tee", "--monitor")) for a in args(["t.py"]))
    with pytest.raises(SystemExit):  # torchrun's --tee takes 0-3
        args(["--tee", "4", "t.py"])


def test_default_endpoint_rdzv_endpoint_then_slurm_then_hostname():
    env = {"RDZV_ENDPOINT": "head.cluster:29400", "MASTER_ADDR": "other"}
    assert "--rdzv-endpoint=head.cluster:29400" in args(["t.py"], {**SLURM_TWO_NODES, **env})
    assert "--rdzv-endpoint=head.cluster:29400" in args(["t.py"], env)  # one node, not standalone
    assert "--rdzv-endpoint=cli:1" in args(["--rdzv-endpoint", "cli:1", "t.py"], env)
    # several nodes outside SLURM: the first node is this one ($HOSTNAME, as the original)
    out = args(["--nnodes", "2", "t.py"], {"HOSTNAME": "node-a"})
    assert "--rdzv-endpoint=node-a:29500" in out and "--rdzv-backend=c10d" in out
    assert "--rdzv-endpoint=localhost:29500" in args(["--nnodes", "2", "t.py"])
    # an explicit backend on one node rendezvous as asked instead of --standalone
    out = args(["--rdzv-backend", "c10d", "t.py"], {"HOSTNAME": "node-a"})
    assert "--standalone" not in out and "--rdzv-endpoint=node-a:29500" in out


def test_bad_launches_are_refused_with_the_fix():
    with pytest.raises(SystemExit, match="--rdzv-endpoint HOST:PORT"):
        args(["--nnodes", "2", "--node-rank", "1", "t.py"], {"HOSTNAME": "node-b"})
    with pytest.raises(SystemExit, match="--standalone is for one node"):
        args(["--standalone", "--nnodes", "2", "t.py"])
    step = {**SLURM_TWO_NODES, "SLURM_STEP_NUM_TASKS": "8"}
    with pytest.raises(SystemExit, match="--ntasks-per-node=1"):
        args(["t.py"], step)
    with pytest.raises(SystemExit):  # argparse: the script is required
        args([])


@pytest.mark.parametrize(
    "nodelist, host",
    [  # the first line of `scontrol show hostnames <nodelist>`
        ("node1", "node1"),
        ("node[1-3]", "node1"),
        ("node[01-02,05]", "node01"),
        ("x[007]", "x007"),
        ("c[01-02]n[1-2]", "c01n1"),
        ("gpu[03-05,07],cpu1", "gpu03"),
        ("a,b", "a"),
        ("a b", "a"),
        (" n[5,1-3] ", "n5"),
        ("rack[2-3]-n[10-12]", "rack2-n10"),
        ("gpu-[1-2]", "gpu-1"),
        ("gpu-[1,4]", "gpu-1"),
    ],
)
def test_first_host(nodelist, host):
    from nn_handler.utils.ddp import _first_host_from_slurm_nodelist

    assert first_host(nodelist) == host
    assert _first_host_from_slurm_nodelist(nodelist) == host  # the same parser


@pytest.mark.parametrize("nodelist", ["", ",node2", "a]b", "a[1", "a[]", "a[[1]]"])
def test_first_host_refuses_what_is_not_a_host_list(nodelist):
    with pytest.raises(ValueError, match="Cannot read a host name .* MASTER_ADDR"):
        first_host(nodelist)


def test_gpu_counts():
    assert [gpus_per_node(v) for v in ("4", "a100:4", "gpu:a100:2,gpu:v100:1")] == [4, 4, 3]
    with pytest.raises(ValueError, match="GPU count"):
        gpus_per_node("many")


def test_dry_run_prints_the_torchrun_command(capsys):
    from nn_handler.launch import main

    main(["--dry-run", "--standalone", "--nproc-per-node", "2", "train.py", "-x"])
    out, err = capsys.readouterr()
    assert (
        out.strip()
        == "torchrun --nnodes=1 --nproc-per-node=2 --node-rank=0 --standalone train.py -x"
    )
    assert err.startswith("nn_handler_run: 1 node(s)")


# --------------------------------------------------------------------- real launches
def _env() -> dict[str, str]:
    env = clean_env(drop_slurm=True)
    env.update(NN_HANDLER_DDP_TIMEOUT="120", OMP_NUM_THREADS="1")
    return env


def _reports(out: Path, world: int) -> list[dict]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(world)]


def _same_training(reports: list[dict]) -> None:
    for rep in reports[1:]:
        assert rep["train_losses"] == reports[0]["train_losses"]
        assert rep["weights"] == reports[0]["weights"]
    assert len(reports[0]["train_losses"]) == 2


@pytest.mark.slow
def test_standalone_two_cpu_processes(tmp_path):
    cmd = [*launcher(), "--standalone", "--nproc-per-node", "2", str(JOB), str(tmp_path / "out")]
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, job_output(proc)
    assert "nn_handler_run: 1 node(s) [default] x 2 process(es) [--nproc-per-node]" in proc.stderr
    reports = _reports(tmp_path / "out", 2)
    for r, rep in enumerate(reports):
        assert (rep["rank"], rep["local_rank"], rep["world_size"], rep["distributed"]) == (
            r,
            r,
            2,
            True,
        )
        probe = rep["probe"]
        assert probe["cluster"] == "TorchElasticEnvironment" and probe["strategy"] == "DDPStrategy"
        assert (probe["trainer_num_nodes"], probe["trainer_world"], probe["global_rank"]) == (
            1,
            2,
            r,
        )
    _same_training(reports)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_two_nodes(tmp_path: Path, out: Path) -> tuple[list[int], list[str]]:
    endpoint = f"127.0.0.1:{_free_port()}"
    procs = []
    for node in (0, 1):
        # node 0 is given the endpoint on its command line, node 1 through RDZV_ENDPOINT; both
        # pass the original's torchrun options, as its SLURM scripts do
        env = _env()
        where = ["--rdzv-endpoint", endpoint] if node == 0 else []
        if node == 1:
            env["RDZV_ENDPOINT"] = endpoint
        cmd = [
            *launcher(),
            "--nnodes", "2", "--nproc-per-node", "2", "--node-rank", str(node), *where,
            "--rdzv-backend", "c10d", "--rdzv-id", "two-nodes-test",
            "--max-restarts", "0", "--monitor-interval", "0.5", "--tee", "3",
            str(JOB), str(out),
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(
                cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        )
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=420)[0].decode(errors="replace"))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return [p.returncode for p in procs], outputs


@pytest.mark.slow
def test_two_nodes_on_one_machine(tmp_path):
    """Two launchers, as on two machines: --nnodes 2, a c10d rendezvous on 127.0.0.1, 2 processes
    each. Every process must see world size 4 and Lightning a DDP strategy over 2 nodes."""
    out = tmp_path / "out"
    codes, outputs = _launch_two_nodes(tmp_path, out)
    if codes != [0, 0] and any("RendezvousConnectionError" in o for o in outputs):
        # The free port was released before the launchers bound it; on a busy machine another
        # process can take it in between. One more try, on a new port.
        out = tmp_path / "retry"
        codes, outputs = _launch_two_nodes(tmp_path, out)
    for node, text in enumerate(outputs):
        (tmp_path / f"node{node}.log").write_text(text)
    assert codes == [0, 0], "\n----\n".join(o[:3000] + "\n[...]\n" + o[-3000:] for o in outputs)
    assert "[RDZV_ENDPOINT]" in outputs[1].splitlines()[0]  # node 1's endpoint came from there
    reports = _reports(out, 4)
    assert sorted(rep["rank"] for rep in reports) == [0, 1, 2, 3]
    nodes: dict[int, list[int]] = {}
    for rep in reports:
        probe = rep["probe"]
        assert rep["world_size"] == 4 and rep["distributed"] is True
        assert probe["trainer_num_nodes"] == 2 and probe["strategy_num_nodes"] == 2
        assert probe["trainer_world"] == 4 and probe["global_rank"] == rep["rank"]
        assert probe["cluster"] == "TorchElasticEnvironment"
        assert rep["env"]["LOCAL_WORLD_SIZE"] == "2"
        nodes.setdefault(probe["node_rank"], []).append(rep["local_rank"])
    assert {k: sorted(v) for k, v in nodes.items()} == {0: [0, 1], 1: [0, 1]}
    _same_training(reports)


@pytest.mark.slow
def test_a_failing_script_fails_the_launch(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("raise SystemExit(3)\n")
    cmd = [*launcher(), "--standalone", "--nproc-per-node", "1", str(script)]
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
