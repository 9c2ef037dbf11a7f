"""Real 2-process DDP jobs (torchrun, gloo on CPU), checked against a single-process run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from launch_env import clean_env, job_output
from launch_env import torchrun as torchrun_command
from torch.utils.data import DataLoader

SCRIPTS = Path(__file__).resolve().parent / "ddp_scripts"
sys.path.insert(0, str(SCRIPTS))

from common import (  # noqa: E402
    ACCUMULATE,
    PER_RANK_BATCH,
    WORLD,
    build,
    datasets,
    history,
    run_training,
)
from models import TinyNet  # noqa: E402

pytestmark = pytest.mark.slow


def torchrun(out: Path, mode: str, timeout: float, extra_env=None) -> subprocess.CompletedProcess:
    env = clean_env()
    env.update(extra_env or {})
    cmd = torchrun_command(SCRIPTS / "ddp_job.py", out, mode, nproc=WORLD)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """One launch, many checks: the reports of both ranks."""
    out = tmp_path_factory.mktemp("ddp_full")
    proc = torchrun(out, "full", timeout=240)
    assert proc.returncode == 0, job_output(proc)
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]
    return out, reports, proc


@pytest.fixture(scope="module")
def reference():
    """The same training in one process with the global batch (2 x per-rank batch)."""
    handler = build(use_distributed=False, batch_size=PER_RANK_BATCH * WORLD)
    run_training(handler)
    return handler


def test_ranks_known_and_handler_joins_the_group_initialize_ddp_made(job):
    _, reports, _ = job
    for r, rep in enumerate(reports):
        # initialize_ddp() before any group: the tuple (the handler then joins that group).
        assert rep["initialize_ddp_first"] == {"pg_before": False, "tuple": [True, r, r, 2]}
        assert (rep["rank"], rep["local_rank"], rep["world_size"]) == (r, r, 2)
        assert rep["distributed"] is True and rep["device"] == "cpu"
        assert rep["pg_ready_at_construction"] is True


def test_logger_exists_on_rank_zero_only(job):
    _, reports, _ = job
    assert [rep["logger_is_none"] for rep in reports] == [False, True]


def test_loaders_are_this_ranks_shards_as_soon_as_they_are_set(job):
    _, reports, _ = job
    loaders = [rep["loaders"] for rep in reports]
    for r, seen in enumerate(loaders):
        assert seen["train_sampler_is_distributed"] and seen["train_sampler"] == (
            "DistributedSampler"
        )
        assert (seen["train_shuffle"], seen["train_rank"]) == (False, r)  # shuffle=False kept
        assert seen["val_sampler_is_distributed"]
    # 64 training samples: disjoint halves; 37 validation samples: 19 + 18, none repeated.
    train = [seen["train_indices"] for seen in loaders]
    assert sorted(train[0] + train[1]) == list(range(64)) and len(train[0]) == 32
    val = [seen["val_indices"] for seen in loaders]
    assert sorted(val[0] + val[1]) == list(range(37)) and len(val[0]) == 19
    # Lightning trained on exactly that loader's sampler.
    assert all(rep["probe"]["fits_on_handler_loader"] for rep in reports)


def test_lightning_ran_ddp_under_torchelastic_with_our_shards(job):
    _, reports, _ = job
    for rep in reports:
        probe = rep["probe"]
        assert probe["cluster"] == "TorchElasticEnvironment"
        assert (probe["strategy"], probe["world"], probe["backend"]) == ("DDPStrategy", 2, "gloo")
        assert probe["train_sampler"] == "DistributedSampler"
        assert probe["train_shuffle"] is False  # shuffle=False honoured
        assert probe["sampler_epochs"] == [0, 1, 2]  # global epoch, across two train() calls
        assert probe["val_sampler"] == "UnrepeatedDistributedSampler"
    # 37 validation samples split 19 + 18: none repeated.
    assert [rep["probe"]["val_samples_here"] for rep in reports] == [19, 18]


def test_history_matches_single_process_and_is_identical_on_ranks(job, reference):
    _, reports, _ = job
    assert reports[0]["history"] == reports[1]["history"]
    got, want = reports[0]["history"], history(reference)
    # Rank-0 early stop after 2 epochs, then train(1): 3 epochs on both.
    assert len(got["train_losses"]) == len(want["train_losses"]) == 3
    assert got["train_losses"] == pytest.approx(want["train_losses"], rel=1e-5)
    assert got["val_losses"] == pytest.approx(want["val_losses"], rel=1e-5)
    assert got["train_metrics"]["acc"] == pytest.approx(want["train_metrics"]["acc"], rel=1e-6)
    # A torchmetrics metric is exact over the 37 validation samples (no padding counted).
    assert got["val_metrics"]["tm_acc"] == pytest.approx(want["val_metrics"]["tm_acc"], rel=1e-6)
    for value in got["val_metrics"]["tm_acc"]:
        assert round(value * 37) == pytest.approx(value * 37, abs=1e-4)


def test_ranks_end_with_identical_weights_equal_to_single_process(job, reference):
    _, reports, _ = job
    assert reports[0]["weights"] == reports[1]["weights"]
    for name, value in reference.module.state_dict().items():
        assert reports[0]["weights"][name] == pytest.approx(value.reshape(-1).tolist(), abs=1e-5)


def test_predict_gathers_on_rank_zero_in_dataset_order(job):
    _, reports, _ = job
    assert reports[1]["predict"] is None
    batches = reports[0]["predict"]
    assert [len(b) for b in batches] == [5] * 7 + [2]  # the loader's own batching
    model = TinyNet(hidden=12)
    model.load_state_dict(
        {
            k: torch.tensor(v).reshape(p.shape)
            for (k, p), v in zip(model.state_dict().items(), reports[0]["weights"].values())
        }
    )
    _, val = datasets()
    with torch.no_grad():
        want = torch.cat([model(x) for x, _ in DataLoader(val, batch_size=5)])
    assert torch.tensor([row for b in batches for row in b]) == pytest.approx(want, abs=1e-5)


def test_checkpoint_written_once_by_rank_zero(job):
    out, reports, _ = job
    assert [rep["checkpoint"]["saves_here"] for rep in reports] == [1, 0]
    assert all(rep["checkpoint"]["exists"] for rep in reports)  # visible once the call returns
    assert (out / "model.pth").stat().st_size > 0


def test_ddp_utilities_across_ranks(job):
    _, reports, _ = job
    for r, rep in enumerate(reports):
        util = rep["utilities"]
        assert util["initialize_ddp_again"] is None  # the process group already exists
        # The failure on rank 1 is raised on both ranks.
        assert "failed on rank 1: ValueError: deliberate failure on rank one" in (
            util["on_rank_error"] or ""
        )
        assert util["on_rank_result"] == (42 if r == 0 else None)
        assert util["aggregate_loss"] == pytest.approx(1.5)
        assert util["aggregate_metrics"] == pytest.approx({"a": 1.0, "b": 1.0})
        assert util["broadcast"] == {"from": 0, "t": [0, 1, 2]}
        assert util["broadcast_if_ddp"] == 11


def test_no_lightning_noise_in_the_job_output(job):
    _, _, proc = job
    text = proc.stdout + proc.stderr
    assert "sync_dist=True" not in text
    assert "All distributed processes registered" not in text


def test_accumulation_clipping_and_ema_match_single_process(tmp_path):
    """Manual optimization under DDP: gradients averaged over the ranks before every step."""
    proc = torchrun(tmp_path, "accumulate", timeout=240)
    assert proc.returncode == 0, job_output(proc)
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    reference = build(use_distributed=False, batch_size=PER_RANK_BATCH * WORLD)
    reference.train(3, progress_bar=False, **ACCUMULATE)
    for rep in reports:
        # Several processes: "auto" runs chunked steps too (4 batches a rank: one chunk).
        assert rep["module"] == {"class": "ChunkedHandlerModule", "batches": 16, "automatic": False}
        # 4 batches a rank and epoch in windows of 3: 2 optimizer steps an epoch.
        assert rep["global_step"] == reference.run_state.global_step == 6
    assert reports[0]["weights"] == reports[1]["weights"]
    got, want = reports[0]["history"], history(reference)
    assert got["train_losses"] == pytest.approx(want["train_losses"], rel=1e-5)
    assert got["val_losses"] == pytest.approx(want["val_losses"], rel=1e-5)
    for name, value in reference.module.state_dict().items():
        assert reports[0]["weights"][name] == pytest.approx(value.reshape(-1).tolist(), abs=1e-5)
    for name, value in reference.ema.module.state_dict().items():
        assert reports[0]["ema"][name] == pytest.approx(value.reshape(-1).tolist(), abs=1e-5)


def test_a_crashed_rank_fails_the_job_in_bounded_time(tmp_path):
    start = time.monotonic()
    proc = torchrun(tmp_path, "crash", timeout=120, extra_env={"NN_HANDLER_DDP_TIMEOUT": "30"})
    elapsed = time.monotonic() - start
    assert proc.returncode != 0
    assert "rank 1 crashes on purpose" in proc.stdout + proc.stderr
    assert elapsed < 90
