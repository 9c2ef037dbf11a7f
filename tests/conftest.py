"""Shared fixtures: tiny models and synthetic data, and a clean working directory per test."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))  # test helper modules (models.py) importable by path


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Every test runs in its own empty directory: files it writes never collide."""
    monkeypatch.chdir(tmp_path)
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(key, raising=False)
    yield


@pytest.fixture(autouse=True)
def _no_inherited_seed(monkeypatch):
    """Seeding (Lightning's ``seed_everything``) exports ``PL_GLOBAL_SEED``/``PL_SEED_WORKERS``,
    which set the DDP shuffle seed and the loaders' worker seeding of every later run in the
    process: each test starts without a seed an earlier one left (monkeypatch removes its own)."""
    for key in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(autouse=True)
def _no_leftover_log_handlers():
    """Loggers live as long as the process: a handler a test gives a named logger (a log file
    in that test's own directory) would reach later tests, since ``initialize_logger`` returns a
    logger that already has handlers as it is. Each test's additions are closed and removed."""
    before = {name: set(lg.handlers) for name, lg in _named_loggers()}
    yield
    for name, lg in _named_loggers():
        for handler in [h for h in lg.handlers if h not in before.get(name, ())]:
            lg.removeHandler(handler)
            handler.close()


def _named_loggers() -> list[tuple[str, logging.Logger]]:
    # dict.copy() runs no Python code; list(d.items()) allocates a tuple per entry, which can start
    # a collection whose finalizers (or a thread switch) add a logger mid-iteration: a CI run
    # failed with "dictionary changed size during iteration" here.
    loggers = logging.Logger.manager.loggerDict.copy()
    return [(name, lg) for name, lg in loggers.items() if isinstance(lg, logging.Logger)]


@pytest.fixture
def one_thread():
    """torch uses one intra-op thread during the test: with tiny tensors more threads only add
    contention on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cls_data():
    """A learnable 3-class problem: 192 samples, 8 features."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(192, 8, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return TensorDataset(x, y)


@pytest.fixture
def reg_data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(160, 8, generator=g)
    w = torch.arange(8, dtype=torch.float32).unsqueeze(1) / 8
    return TensorDataset(x, x @ w + 0.01 * torch.randn(160, 1, generator=g))


@pytest.fixture
def legacy_file(monkeypatch, tmp_path):
    """A checkpoint written by the original NNHandler (a pickle) and what it holds; its model's
    module (``legacy_models``) is importable."""
    legacy = TESTS / "fixtures" / "legacy"
    monkeypatch.syspath_prepend(str(legacy))
    path = tmp_path / "original_classifier.pth"
    shutil.copy(legacy / "original_classifier.pth", path)
    return path, json.loads((legacy / "expected.json").read_text())
