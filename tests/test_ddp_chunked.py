"""Chunked steps and gradient accumulation under DDP.

The slow tests launch one 2-process torchrun job (gloo, CPU; tests/ddp_scripts/chunk_job.py)
that trains the same job with ``NNHandler.train`` for several (batches per step, accumulation)
cases and with a hand-written DDP loop, counting the gradient all-reduces of each with a DDP
communication hook. The fast tests check which strategies ``"auto"`` runs chunked.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from launch_env import clean_env, job_output, torchrun
from lightning.pytorch.strategies import DDPStrategy
from nn_handler.adapters.steps.steps_per_execution import AUTO_BATCHES, resolve_steps_per_execution
from torch.utils.data import DataLoader, TensorDataset

SCRIPTS = Path(__file__).resolve().parent / "ddp_scripts"
sys.path.insert(0, str(SCRIPTS))

from chunk_job import CASES, EPOCHS, HOOKED_CASE  # noqa: E402

WORLD = 2
BATCHES_PER_EPOCH = 10  # 80 samples a rank, batches of 8


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """One launch, every check: the reports of both ranks."""
    out = tmp_path_factory.mktemp("ddp_chunked")
    cmd = torchrun(SCRIPTS / "chunk_job.py", out, nproc=WORLD)
    env = clean_env()
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, job_output(proc)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def _equal(a: dict, b: dict) -> bool:
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a)


def _steps(accumulate: int) -> int:
    return EPOCHS * -(-BATCHES_PER_EPOCH // accumulate)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[f"K={k}-A={a}" for k, a in CASES])
def test_weights_equal_a_hand_written_ddp_loop_on_both_ranks(reports, case):
    batches, accumulate = case
    for rank, report in enumerate(reports):
        got, loop = report["handler"][case], report["loop"][accumulate]
        assert _equal(got["start"], loop["start"])  # the same initial weights
        assert _equal(got["weights"], loop["weights"]), f"rank {rank}"
        assert got["steps"] == loop["steps"] == _steps(accumulate)
        # "auto" runs 16 batches per Lightning step on several processes too.
        assert got["batches"] == (AUTO_BATCHES if batches == "auto" else batches)
    assert _equal(reports[0]["handler"][case]["weights"], reports[1]["handler"][case]["weights"])
    assert not _equal(reports[0]["handler"][case]["weights"], reports[0]["handler"][case]["start"])


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[f"K={k}-A={a}" for k, a in CASES])
def test_one_gradient_all_reduce_per_optimizer_step(reports, case):
    """Counted by a DDP communication hook on the wrapper that reduces: micro-batches before a
    window's last one do not communicate."""
    _, accumulate = case
    for report in reports:
        got, loop = report["handler"][case], report["loop"][accumulate]
        assert got["buckets"] == loop["buckets"] == 1  # the tiny model fits one bucket
        assert got["reductions"] == got["steps"] * got["buckets"] == loop["reductions"]
        if accumulate > 1:
            assert got["reductions"] < EPOCHS * BATCHES_PER_EPOCH


@pytest.mark.slow
def test_lightnings_backward_and_step_under_ddp_equal_the_loop_too(reports):
    """A callback with a backward hook: the module goes through Lightning's manual_backward and
    LightningOptimizer (the other cases step directly); same weights, same all-reduces."""
    batches, accumulate = HOOKED_CASE
    for report in reports:
        got, loop = report["hooked"], report["loop"][accumulate]
        assert got["backwards"] == EPOCHS * BATCHES_PER_EPOCH  # the hook saw every batch
        assert got["batches"] == batches
        assert _equal(got["weights"], loop["weights"])
        assert got["reductions"] == got["steps"] == loop["reductions"] == _steps(accumulate)


@pytest.mark.slow
def test_resume_from_a_mid_run_auto_save_is_exact(reports):
    for report in reports:
        assert report["saved"] == ["e01.pth", "e02.pth", "e03.pth"]
        resumed, whole = report["resumed"], report["handler"][("auto", 3)]
        assert resumed["batches"] == AUTO_BATCHES
        assert resumed["steps"] == whole["steps"] == _steps(3)
        assert _equal(resumed["weights"], whole["weights"])
        assert resumed["train_losses"] == whole["train_losses"]
        assert resumed["val_losses"] == whole["val_losses"]
    assert _equal(reports[0]["resumed"]["weights"], reports[1]["resumed"]["weights"])


def test_one_process_ddp_reduces_once_per_optimizer_step():
    """Fast: Lightning's DDPStrategy on one process (its own interpreter) runs chunks, gathers
    the gradients of a window in no_sync() and equals the hand-written loop."""
    env = clean_env()
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "one_rank_ddp.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, job_output(proc)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    steps = EPOCHS * -(-20 // 3)  # 160 samples in batches of 8, windows of 3
    assert got == {
        "batches": AUTO_BATCHES,
        "reductions": steps,
        "steps": steps,
        "loop_reductions": steps,
        "loop_steps": steps,
        "same_weights": True,
    }


# ------------------------------------------------------------------ "auto" per strategy (fast)
def _auto(strategy, caplog) -> int:
    loader = DataLoader(TensorDataset(torch.zeros(8, 2)), batch_size=2)
    trainer = L.Trainer(
        strategy=strategy,
        devices=1,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    with caplog.at_level(logging.DEBUG, logger="nn_handler"):
        return resolve_steps_per_execution("auto", trainer, loader, {})


def test_auto_chunks_under_plain_ddp(caplog):
    assert _auto(DDPStrategy(), caplog) == AUTO_BATCHES
    assert "1 batch per step" not in caplog.text


@pytest.mark.parametrize(
    ("strategy", "why"),
    [
        (DDPStrategy(find_unused_parameters=True), "find_unused_parameters=True"),
        (DDPStrategy(static_graph=True), "static_graph=True"),
        (DDPStrategy(model_averaging_period=4), "model averaging"),
        ("ddp_spawn", "spawned or forked"),
    ],
    ids=["find_unused", "static_graph", "model_averaging", "spawn"],
)
def test_auto_keeps_one_batch_where_not_covered_and_logs_why(strategy, why, caplog):
    assert _auto(strategy, caplog) == 1
    assert "steps_per_execution='auto' runs 1 batch per step" in caplog.text
    assert why in caplog.text


def test_an_asked_k_under_uncovered_ddp_runs_one_with_a_warning():
    loader = DataLoader(TensorDataset(torch.zeros(8, 2)), batch_size=2)
    trainer = L.Trainer(
        strategy=DDPStrategy(find_unused_parameters=True),
        devices=1,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
    )
    with pytest.warns(UserWarning, match="find_unused_parameters"):
        assert resolve_steps_per_execution(8, trainer, loader, {}) == 1
