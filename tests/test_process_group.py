"""Which process group nn_handler destroys (in this process, world size 1 with gloo; the exit-time
behaviour of real 2-process jobs: test_ddp_exit.py)."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist

from nn_handler._env import process_group
from nn_handler._env.dist_env import DistEnv
from nn_handler._env.process_group import ensure_process_group

ONE = DistEnv(True, 0, 0, 1, "torchrun", 1, 1, 0)  # a torchrun job of one process


@pytest.fixture(autouse=True)
def launcher_address(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def user_group() -> None:
    dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore())


def test_a_group_nn_handler_created_is_destroyed_once():
    ensure_process_group(ONE, torch.device("cpu"))
    assert dist.is_initialized() and process_group.created_group() is not None
    assert process_group.destroy_created_group() is True
    assert not dist.is_initialized()
    assert process_group.destroy_created_group() is False  # the exit hook may run after this


def test_a_group_the_user_created_is_never_destroyed():
    user_group()
    ensure_process_group(ONE, torch.device("cpu"))  # reused, not created
    assert process_group.created_group() is None
    assert process_group.destroy_created_group() is False
    assert dist.is_initialized()


def test_a_group_the_user_destroyed_or_replaced_is_left_alone():
    ensure_process_group(ONE, torch.device("cpu"))
    dist.destroy_process_group()
    assert process_group.destroy_created_group() is False  # nothing to do, and no error
    ensure_process_group(ONE, torch.device("cpu"))
    dist.destroy_process_group()
    user_group()  # a new default group in the place of ours
    assert process_group.created_group() is None
    assert process_group.destroy_created_group() is False
    assert dist.is_initialized()
