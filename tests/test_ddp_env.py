"""Distributed detection and the Trainer arguments it produces, from simulated environments."""

from __future__ import annotations

from datetime import timedelta

import lightning as L
import pytest
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from lightning.pytorch.strategies import DDPStrategy
from nn_handler.adapters.fit.strategy import strategy_arguments

from nn_handler import NNHandler
from nn_handler._env.dist_env import DistEnv, detect_distributed
from nn_handler._env.process_group import collective_timeout, ensure_process_group

# Building SLURMEnvironment outside srun on a machine that has srun warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:The `srun` command is available")

TORCHRUN_2x4 = {  # global rank 5 = node 1, local rank 1 (as torchrun sets them)
    "RANK": "5",
    "LOCAL_RANK": "1",
    "WORLD_SIZE": "8",
    "LOCAL_WORLD_SIZE": "4",
    "GROUP_RANK": "1",
    "GROUP_WORLD_SIZE": "2",
    "MASTER_ADDR": "node0",
    "MASTER_PORT": "29500",
    "TORCHELASTIC_RUN_ID": "job",
}
SLURM_2x4 = {  # task 6 = node 1, local id 2 (as srun --nodes=2 --ntasks-per-node=4 sets them)
    "SLURM_NTASKS": "8",
    "SLURM_PROCID": "6",
    "SLURM_LOCALID": "2",
    "SLURM_NTASKS_PER_NODE": "4",
    "SLURM_NNODES": "2",
    "SLURM_NODEID": "1",
    "SLURM_NODELIST": "gpu[01-02]",
    "SLURM_JOB_NAME": "train",
    "SLURM_JOB_ID": "4242",
    "SLURM_STEP_ID": "0",
}


# ----------------------------------------------------------------------------- detection
def test_torchrun_two_nodes_of_four():
    assert detect_distributed(None, TORCHRUN_2x4) == DistEnv(
        distributed=True,
        rank=5,
        local_rank=1,
        world_size=8,
        source="torchrun",
        local_world_size=4,
        num_nodes=2,
        node_rank=1,
    )


def test_slurm_two_nodes_of_four():
    assert detect_distributed(None, SLURM_2x4) == DistEnv(
        distributed=True,
        rank=6,
        local_rank=2,
        world_size=8,
        source="slurm",
        local_world_size=4,
        num_nodes=2,
        node_rank=1,
    )


def test_torchrun_wins_inside_slurm():
    env = {**SLURM_2x4, **TORCHRUN_2x4}
    assert detect_distributed(None, env).source == "torchrun"


def test_use_distributed_false_ignores_the_environment():
    assert detect_distributed(False, TORCHRUN_2x4) == DistEnv()


def test_one_process_is_not_distributed():
    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
    assert detect_distributed(None, env).distributed is False
    assert detect_distributed(None, {}).distributed is False


def test_use_distributed_true_outside_a_job_names_the_launchers():
    with pytest.raises(RuntimeError, match="torchrun --nproc_per_node"):
        detect_distributed(True, {})
    with pytest.raises(RuntimeError, match="use_distributed=True"):
        NNHandler(torch.nn.Linear, use_distributed=True, in_features=2, out_features=1)


def test_interactive_slurm_job_name_is_explained():
    env = {**SLURM_2x4, "SLURM_JOB_NAME": "bash"}
    assert detect_distributed(None, env).distributed is False  # as Lightning: not SLURM
    with pytest.raises(RuntimeError, match="--job-name"):
        detect_distributed(True, env)


def test_slurm_batch_step_without_srun_warns_and_trains_alone():
    env = {k: v for k, v in SLURM_2x4.items() if k != "SLURM_STEP_ID"}
    with pytest.warns(RuntimeWarning, match="not started by srun"):
        assert detect_distributed(None, env).distributed is False


@pytest.mark.parametrize(
    "env, match",
    [
        ({"SLURM_NTASKS": "4", "SLURM_PROCID": "0", "SLURM_STEP_ID": "0"}, "--ntasks-per-node=4"),
        ({**SLURM_2x4, "SLURM_NNODES": "3"}, "SLURM_NTASKS=8 but SLURM_NNODES=3"),
        ({**SLURM_2x4, "SLURM_NODELIST": ""}, "SLURM_NODELIST is not set"),
        ({**SLURM_2x4, "SLURM_LOCALID": "4"}, "SLURM_LOCALID=4 is outside"),
        ({**SLURM_2x4, "SLURM_PROCID": "8"}, "SLURM_PROCID=8 is outside"),
        ({**TORCHRUN_2x4, "LOCAL_WORLD_SIZE": "3"}, "not a multiple of LOCAL_WORLD_SIZE=3"),
        ({**TORCHRUN_2x4, "GROUP_WORLD_SIZE": "4"}, "GROUP_WORLD_SIZE=4"),
        ({**TORCHRUN_2x4, "RANK": "8"}, "RANK=8 is outside"),
        ({**TORCHRUN_2x4, "LOCAL_RANK": "x"}, "LOCAL_RANK='x' is not an integer"),
    ],
)
def test_inconsistent_variables_are_named(env, match):
    with pytest.raises(ValueError, match=match):
        detect_distributed(None, env)


def test_use_distributed_must_be_bool_or_none():
    with pytest.raises(TypeError, match="True, False or None"):
        detect_distributed("yes", {})


# ------------------------------------------------------------------- strategy arguments
def _check_ddp(strategy, cluster_type, backend, find_unused=False):
    assert type(strategy) is DDPStrategy
    assert type(strategy.cluster_environment) is cluster_type
    assert strategy._process_group_backend == backend
    assert strategy._ddp_kwargs == {"find_unused_parameters": find_unused}
    assert strategy._timeout == timedelta(minutes=30)


def test_trainer_arguments_torchrun_2_nodes_x_4_gpus():
    dist = detect_distributed(None, TORCHRUN_2x4)
    args = strategy_arguments(dist, torch.device("cuda", 1), None, env=TORCHRUN_2x4)
    assert {k: v for k, v in args.items() if k != "strategy"} == {
        "accelerator": "gpu",
        "devices": 4,
        "num_nodes": 2,
    }
    _check_ddp(args["strategy"], TorchElasticEnvironment, "nccl")


def test_trainer_arguments_slurm_2_nodes_x_4_gpus():
    dist = detect_distributed(None, SLURM_2x4)
    args = strategy_arguments(dist, torch.device("cuda", 2), {}, env=SLURM_2x4)
    assert {k: v for k, v in args.items() if k != "strategy"} == {
        "accelerator": "gpu",
        "devices": 4,
        "num_nodes": 2,
    }
    cluster = args["strategy"].cluster_environment
    assert isinstance(cluster, SLURMEnvironment)
    _check_ddp(args["strategy"], type(cluster), "nccl")


def test_slurm_main_address_comes_from_the_launchers_node_list_parser(monkeypatch):
    """Lightning's own parser reads ``c[01-02]n[1-2]`` as ``c01``; SLURM's first host is
    ``c01n1``, which nn_handler_run's rendezvous endpoint also uses."""
    from nn_handler.launch import torchrun_arguments

    env = {**SLURM_2x4, "SLURM_NODELIST": "c[01-02]n[1-2]"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MASTER_ADDR", "unset below")  # so that monkeypatch restores its state
    monkeypatch.delenv("MASTER_ADDR")  # Lightning reads the node list only without MASTER_ADDR
    args = strategy_arguments(detect_distributed(None, env), torch.device("cpu"), {}, env=env)
    assert args["strategy"].cluster_environment.main_address == "c01n1"
    node_step = {**env, "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "1"}  # one per node
    launch = torchrun_arguments(["t.py"], node_step, cuda_count=0)[0]
    assert f"--rdzv-endpoint=c01n1:{13000 + 4242}" in launch


@pytest.fixture
def restore_rank_zero():
    """Building a Trainer under a simulated rank changes Lightning's global rank-zero flag."""
    from lightning.fabric.utilities import rank_zero as fabric_rz
    from lightning.pytorch.utilities import rank_zero as pl_rz

    saved = (fabric_rz.rank_zero_only.rank, pl_rz.rank_zero_only.rank)
    yield
    fabric_rz.rank_zero_only.rank, pl_rz.rank_zero_only.rank = saved


@pytest.mark.parametrize("env", [TORCHRUN_2x4, SLURM_2x4], ids=["torchrun", "slurm"])
def test_lightning_accepts_the_arguments_and_sees_the_same_job(env, monkeypatch, restore_rank_zero):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    dist = detect_distributed(None)
    args = strategy_arguments(dist, torch.device("cpu"), None)
    assert (args["accelerator"], args["devices"], args["num_nodes"]) == ("cpu", 4, 2)
    _check_ddp(args["strategy"], type(args["strategy"].cluster_environment), "gloo")
    trainer = L.Trainer(**args, logger=False, enable_checkpointing=False, max_epochs=1)
    assert (trainer.world_size, trainer.num_nodes, trainer.num_devices) == (8, 2, 4)
    assert (trainer.global_rank, trainer.local_rank, trainer.node_rank) == (
        dist.rank,
        dist.local_rank,
        dist.node_rank,
    )


def test_find_unused_parameters_from_env_or_ddp_kwargs():
    dist = detect_distributed(None, TORCHRUN_2x4)
    cpu = torch.device("cpu")
    env = {"DDP_FIND_UNUSED_PARAMETERS": "true"}
    assert strategy_arguments(dist, cpu, None, env=env)["strategy"]._ddp_kwargs == {
        "find_unused_parameters": True
    }
    kwargs = {"find_unused_parameters": False, "gradient_as_bucket_view": True}
    assert strategy_arguments(dist, cpu, kwargs, env=env)["strategy"]._ddp_kwargs == kwargs
    assert strategy_arguments(dist, cpu, {"find_unused_parameters": True}, env={})[
        "strategy"
    ]._ddp_kwargs == {"find_unused_parameters": True}
    with pytest.raises(ValueError, match="DDP_FIND_UNUSED_PARAMETERS='maybe'"):
        strategy_arguments(dist, cpu, None, env={"DDP_FIND_UNUSED_PARAMETERS": "maybe"})


def test_bad_ddp_kwargs_are_rejected_even_in_one_process():
    with pytest.raises(TypeError, match="find_unused_params"):
        strategy_arguments(DistEnv(), torch.device("cpu"), {"find_unused_params": True})
    dist = detect_distributed(None, TORCHRUN_2x4)
    with pytest.raises(TypeError, match="decided from the launcher"):
        strategy_arguments(dist, torch.device("cpu"), {"device_ids": [0]})
    assert strategy_arguments(DistEnv(), torch.device("cpu"), None) == {}


def test_collective_timeout_from_argument_or_environment():
    assert collective_timeout(None, env={}) == timedelta(minutes=30)
    assert collective_timeout(None, env={"NN_HANDLER_DDP_TIMEOUT": "45"}) == timedelta(seconds=45)
    assert collective_timeout(timedelta(seconds=5)) == timedelta(seconds=5)
    dist = detect_distributed(None, TORCHRUN_2x4)
    args = strategy_arguments(dist, torch.device("cpu"), None, env={"NN_HANDLER_DDP_TIMEOUT": "7"})
    assert args["strategy"]._timeout == timedelta(seconds=7)
    with pytest.raises(ValueError, match="must be positive"):
        collective_timeout(0)
    with pytest.raises(ValueError, match="NN_HANDLER_DDP_TIMEOUT='soon'"):
        collective_timeout(None, env={"NN_HANDLER_DDP_TIMEOUT": "soon"})
    with pytest.raises(TypeError, match="timedelta"):
        collective_timeout("10")


def test_ensure_process_group_is_a_no_op_for_one_process():
    import torch.distributed as tdist

    ensure_process_group(DistEnv(), torch.device("cpu"))
    assert not tdist.is_initialized()


def test_a_missing_rank_fails_set_up_within_the_timeout(monkeypatch):
    import socket
    import time

    import torch.distributed as tdist

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    alone = DistEnv(True, 0, 0, 2, "torchrun", 2, 1, 0)  # rank 1 never comes
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="1/2 clients joined"):
        ensure_process_group(alone, torch.device("cpu"), timeout=2)
    assert time.monotonic() - start < 15
    assert not tdist.is_initialized()
