"""Warnings point at the user's line (``w.filename`` is this file), whatever the depth of the
nn_handler code that raised them; one frame too far shows as ``sys:1``."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
from models import TinyNet

from nn_handler import NNHandler, parallelize_on_gpus
from nn_handler.utils.ddp import ParallelExecutor
from nn_handler.utils.ddp_init import _resolve_device, _should_use_distributed

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="the fallbacks need no CUDA")


def caught(call) -> tuple[list[warnings.WarningMessage], int]:
    """The warnings of ``call()`` (a lambda written on the caller's line), and that line."""
    line = inspect.currentframe().f_back.f_lineno
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        call()
    return seen, line


def only_from_here(seen: list[warnings.WarningMessage], line: int, text: str) -> None:
    mine = [w for w in seen if text in str(w.message)]
    assert len(mine) == 1, [str(w.message) for w in seen]
    assert (mine[0].filename, mine[0].lineno) == (__file__, line)


@no_cuda
def test_a_direct_resolve_device_call():
    only_from_here(*caught(lambda: _resolve_device("cuda")), "CUDA is not available")


@no_cuda
def test_the_handlers_device_fallback():
    only_from_here(*caught(lambda: NNHandler(TinyNet, device="cuda")), "CUDA is not available")


def double(device, x):
    return x * 2


@no_cuda
def test_the_parallel_helpers_cpu_fallback():
    decorated = parallelize_on_gpus(num_gpus=2)(double)
    only_from_here(*caught(lambda: decorated(3)), "runs once on the CPU")
    only_from_here(*caught(lambda: ParallelExecutor(2).run(double, 3)), "runs once on the CPU")


def test_ddp_requested_outside_a_job():
    only_from_here(*caught(lambda: _should_use_distributed(True)), "DDP was requested")


def test_a_slurm_batch_script_without_srun(monkeypatch):
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.delenv("SLURM_STEP_ID", raising=False)
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    only_from_here(*caught(lambda: NNHandler(TinyNet)), "not started by srun")
