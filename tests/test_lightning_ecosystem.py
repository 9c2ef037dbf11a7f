"""nn_handler with Lightning's own tools: its ModelCheckpoint files, its learning-rate finder, data
modules, and its seeder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from models import TinyNet
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from nn_handler import NNHandler


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 8, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


def make_handler(data, **loader_kwargs):
    torch.manual_seed(0)
    handler = NNHandler(TinyNet)
    handler.set_optimizer(torch.optim.SGD, lr=0.1, momentum=0.9)
    handler.set_loss_fn(nn.functional.cross_entropy)
    handler.set_train_loader(data, **({"batch_size": 8, "shuffle": True} | loader_kwargs))
    return handler


def weights(handler):
    return {k: v.detach().clone() for k, v in handler.module.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------- seeding
class NumpyNoise(Dataset):
    """Each item is a NumPy draw: forked workers share NumPy's state unless they are seeded."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.tensor([float(np.random.rand())] * 8), 0


def test_seed_also_seeds_dataloader_workers(monkeypatch):
    """``seed`` is Lightning's ``seed_everything(seed, workers=True)``: a loader the Trainer reads
    gets Lightning's worker seeding (each worker's streams from the seed, its id and the rank:
    under DDP the ranks' workers draw differently), the same in every run with that seed."""
    from lightning.fabric.utilities.seed import pl_worker_init_function

    monkeypatch.setenv("PL_SEED_WORKERS", "0")  # restored after the test
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)

    def draws():
        handler = make_handler(
            NumpyNoise(), batch_size=1, shuffle=False, num_workers=2, persistent_workers=True
        )
        handler.train(1, seed=5, progress_bar=False)
        assert handler.train_loader.worker_init_fn.func is pl_worker_init_function
        return [float(x[0, 0]) for x, _ in handler.train_loader]

    first = draws()
    # Items 0 and 2 come from worker 0, items 1 and 3 from worker 1.
    assert first[0] != first[1] and first[2] != first[3]
    assert draws() == first
